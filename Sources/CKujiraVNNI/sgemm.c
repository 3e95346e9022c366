// AVX-512F float32 GEMM block for training (see include/CKujiraVNNI.h, `kujira_sgemm_block`): Swift's SIMD code is
// compiled for haswell (16 ymm registers), where a register-blocked product spills; AVX-512's 32 zmm registers hold an
// 8 x 32 tile of C. Each element of C gets its products added in k order with FMA, as the Swift kernel does.
#include "CKujiraVNNI.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define KUJIRA_AVX512F __attribute__((target("avx2,fma,avx512f")))

int kujira_sgemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// One row of C, columns [j, j + width) (width <= 16 through the mask).
KUJIRA_AVX512F static void row_tail(int k, const float *a, long cs, const float *b, long ldb, float *c, __mmask16 mask, int accumulate) {
    __m512 acc = _mm512_setzero_ps();
    for (int l = 0; l < k; l++) acc = _mm512_fmadd_ps(_mm512_set1_ps(a[l * cs]), _mm512_maskz_loadu_ps(mask, b + (long)l * ldb), acc);
    if (accumulate) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c), acc);
    _mm512_mask_storeu_ps(c, mask, acc);
}

#define ROWS 8
KUJIRA_AVX512F static void tile8(int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc, int accumulate) {
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 acc[ROWS][2];
        for (int i = 0; i < ROWS; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
        for (int l = 0; l < k; l++) {
            const float *bl = b + (long)l * ldb + j, *al = a + (long)l * cs;
            __m512 b0 = _mm512_loadu_ps(bl), b1 = _mm512_loadu_ps(bl + 16);
            for (int i = 0; i < ROWS; i++) {
                __m512 x = _mm512_set1_ps(al[i * rs]);
                acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
            }
        }
        for (int i = 0; i < ROWS; i++) {
            float *ci = c + i * ldc + j;
            if (accumulate) {
                acc[i][0] = _mm512_add_ps(_mm512_loadu_ps(ci), acc[i][0]);
                acc[i][1] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc[i][1]);
            }
            _mm512_storeu_ps(ci, acc[i][0]);
            _mm512_storeu_ps(ci + 16, acc[i][1]);
        }
    }
    // Tail columns (and narrow products such as LoRA's rank-r ones): 16 at a time under a mask, all 8 rows together so
    // the FMA chains are independent.
    for (; j < n; j += 16) {
        int width = n - j < 16 ? n - j : 16;
        __mmask16 mask = (__mmask16)((1u << width) - 1);
        __m512 acc[ROWS];
        for (int i = 0; i < ROWS; i++) acc[i] = _mm512_setzero_ps();
        for (int l = 0; l < k; l++) {
            __m512 bl = _mm512_maskz_loadu_ps(mask, b + (long)l * ldb + j);
            const float *al = a + (long)l * cs;
            for (int i = 0; i < ROWS; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(al[i * rs]), bl, acc[i]);
        }
        for (int i = 0; i < ROWS; i++) {
            float *ci = c + i * ldc + j;
            if (accumulate) acc[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, ci), acc[i]);
            _mm512_mask_storeu_ps(ci, mask, acc[i]);
        }
    }
}

KUJIRA_AVX512F void kujira_sgemm_block(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc,
                                       int accumulate) {
    int i = 0;
    for (; i + ROWS <= m; i += ROWS) tile8(n, k, a + i * rs, rs, cs, b, ldb, c + i * ldc, ldc, accumulate);
    for (; i < m; i++) {
        for (int j = 0; j < n; j += 16) {
            int width = n - j < 16 ? n - j : 16;
            row_tail(k, a + i * rs, cs, b + j, ldb, c + i * ldc + j, (__mmask16)((1u << width) - 1), accumulate);
        }
    }
}

#else

int kujira_sgemm_available(void) { return 0; }

void kujira_sgemm_block(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc, int accumulate) {
    (void)m; (void)n; (void)k; (void)a; (void)rs; (void)cs; (void)b; (void)ldb; (void)c; (void)ldc; (void)accumulate;
}

#endif
