// Float32 GEMM blocks for training (see include/CKujiraKernels.h, `kujira_sgemm_block`): Swift's SIMD code is
// compiled for haswell (16 ymm registers), where a register-blocked product spills; AVX-512's 32 zmm registers hold an
// 8 x 32 tile of C. Each element of C gets its products added in k order with FMA, as the Swift kernel does.
#include "CKujiraKernels.h"

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

#if defined(__x86_64__)
// C (m, n) (+)= A (m, k) · Bᵀ with B (n, k) row-major ("NT": y = x · Wᵀ for a row-major weight W), as dots along k:
// 4 x 4 tiles of 16-lane partial sums reduced at the end; B's rows [n0, n1) only, so callers split n across threads.
// B rows are taken 64 at a time and every row block of A passes over them, so each weight row is read from memory once.
KUJIRA_AVX512F void kujira_sgemm_nt_block(int m, int n0, int n1, int k, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                                          int accumulate) {
    const int full = k / 16 * 16, rest = k - full;
    const __mmask16 tail = (__mmask16)((1u << rest) - 1);
    for (int jb = n0; jb < n1; jb += 64) {
        const int je = jb + 64 < n1 ? jb + 64 : n1;
        for (int i = 0; i < m; i += 4) {
            const int mi = m - i < 4 ? m - i : 4;
            for (int j = jb; j < je; j += 4) {
                const int nj = je - j < 4 ? je - j : 4;
                __m512 acc[4][4];
                for (int r = 0; r < 4; r++) for (int s = 0; s < 4; s++) acc[r][s] = _mm512_setzero_ps();
                const float *ar[4], *br[4];
                for (int r = 0; r < 4; r++) ar[r] = a + (long)(i + (r < mi ? r : 0)) * lda;
                for (int s = 0; s < 4; s++) br[s] = b + (long)(j + (s < nj ? s : 0)) * ldb;
                for (int l = 0; l < full; l += 16) {
                    __m512 bv0 = _mm512_loadu_ps(br[0] + l), bv1 = _mm512_loadu_ps(br[1] + l);
                    __m512 bv2 = _mm512_loadu_ps(br[2] + l), bv3 = _mm512_loadu_ps(br[3] + l);
                    for (int r = 0; r < 4; r++) {
                        __m512 av = _mm512_loadu_ps(ar[r] + l);
                        acc[r][0] = _mm512_fmadd_ps(av, bv0, acc[r][0]); acc[r][1] = _mm512_fmadd_ps(av, bv1, acc[r][1]);
                        acc[r][2] = _mm512_fmadd_ps(av, bv2, acc[r][2]); acc[r][3] = _mm512_fmadd_ps(av, bv3, acc[r][3]);
                    }
                }
                if (rest) {
                    __m512 bv[4];
                    for (int s = 0; s < 4; s++) bv[s] = _mm512_maskz_loadu_ps(tail, br[s] + full);
                    for (int r = 0; r < 4; r++) {
                        __m512 av = _mm512_maskz_loadu_ps(tail, ar[r] + full);
                        for (int s = 0; s < 4; s++) acc[r][s] = _mm512_fmadd_ps(av, bv[s], acc[r][s]);
                    }
                }
                for (int r = 0; r < mi; r++) {
                    for (int s = 0; s < nj; s++) {
                        float v = _mm512_reduce_add_ps(acc[r][s]);
                        float *out = c + (long)(i + r) * ldc + j + s;
                        *out = accumulate ? *out + v : v;
                    }
                }
            }
        }
    }
}
#else
void kujira_sgemm_nt_block(int m, int n0, int n1, int k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, int accumulate) {
    (void)m; (void)n0; (void)n1; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc; (void)accumulate;
}
#endif

#if defined(__x86_64__)
#include "avx2.h"

// C(i, j) (+)= Σ_l A(i, l)·B(l, j) for one row i and columns [j0, j1): products and sums in l order without FMA, as the
// Swift `MatMul.scalarRow`.
K_AVX2 static void scalar_row(int j0, int j1, int k, const float *ai, long cs, const float *b, long ldb, float *ci, int accumulate) {
    for (int j = j0; j < j1; j++) {
        float sum = 0;
        for (int l = 0; l < k; l++) sum += ai[(long)l * cs] * b[(long)l * ldb + j];
        ci[j] = accumulate ? ci[j] + sum : sum;
    }
}

K_AVX2 static inline __attribute__((always_inline)) void store16(float *p, __m256 lo, __m256 hi, int accumulate) {
    if (accumulate) {
        lo = _mm256_add_ps(_mm256_loadu_ps(p), lo);
        hi = _mm256_add_ps(_mm256_loadu_ps(p + 8), hi);
    }
    _mm256_storeu_ps(p, lo);
    _mm256_storeu_ps(p + 8, hi);
}

K_AVX2 void kujira_sgemm_block_avx2(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc,
                                         int accumulate) {
    int i = 0;
    for (; i + 6 <= m; i += 6) {
        const float *a0 = a + (long)i * rs;
        int j = 0;
        for (; j + 16 <= n; j += 16) {
            __m256 c0l = _mm256_setzero_ps(), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l;
            __m256 c3l = c0l, c3h = c0l, c4l = c0l, c4h = c0l, c5l = c0l, c5h = c0l;
            for (int l = 0; l < k; l++) {
                const float *bl = b + (long)l * ldb + j;
                const __m256 bvl = _mm256_loadu_ps(bl), bvh = _mm256_loadu_ps(bl + 8);
                const float *al = a0 + (long)l * cs;
                __m256 x;
                x = _mm256_set1_ps(al[0]);      c0l = _mm256_fmadd_ps(x, bvl, c0l); c0h = _mm256_fmadd_ps(x, bvh, c0h);
                x = _mm256_set1_ps(al[rs]);     c1l = _mm256_fmadd_ps(x, bvl, c1l); c1h = _mm256_fmadd_ps(x, bvh, c1h);
                x = _mm256_set1_ps(al[2 * rs]); c2l = _mm256_fmadd_ps(x, bvl, c2l); c2h = _mm256_fmadd_ps(x, bvh, c2h);
                x = _mm256_set1_ps(al[3 * rs]); c3l = _mm256_fmadd_ps(x, bvl, c3l); c3h = _mm256_fmadd_ps(x, bvh, c3h);
                x = _mm256_set1_ps(al[4 * rs]); c4l = _mm256_fmadd_ps(x, bvl, c4l); c4h = _mm256_fmadd_ps(x, bvh, c4h);
                x = _mm256_set1_ps(al[5 * rs]); c5l = _mm256_fmadd_ps(x, bvl, c5l); c5h = _mm256_fmadd_ps(x, bvh, c5h);
            }
            float *base = c + (long)i * ldc + j;
            store16(base, c0l, c0h, accumulate);
            store16(base + ldc, c1l, c1h, accumulate);
            store16(base + 2 * ldc, c2l, c2h, accumulate);
            store16(base + 3 * ldc, c3l, c3h, accumulate);
            store16(base + 4 * ldc, c4l, c4h, accumulate);
            store16(base + 5 * ldc, c5l, c5h, accumulate);
        }
        if (j < n)
            for (int r = i; r < i + 6; r++) scalar_row(j, n, k, a + (long)r * rs, cs, b, ldb, c + (long)r * ldc, accumulate);
    }
    for (; i < m; i++) {
        const float *ai = a + (long)i * rs;
        int j = 0;
        for (; j + 16 <= n; j += 16) {
            __m256 lo = _mm256_setzero_ps(), hi = lo;
            for (int l = 0; l < k; l++) {
                const __m256 x = _mm256_set1_ps(ai[(long)l * cs]);
                lo = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (long)l * ldb + j), lo);
                hi = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (long)l * ldb + j + 8), hi);
            }
            store16(c + (long)i * ldc + j, lo, hi, accumulate);
        }
        if (j < n) scalar_row(j, n, k, ai, cs, b, ldb, c + (long)i * ldc, accumulate);
    }
}
#else
void kujira_sgemm_block_avx2(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc, int accumulate) {
    (void)m; (void)n; (void)k; (void)a; (void)rs; (void)cs; (void)b; (void)ldb; (void)c; (void)ldc; (void)accumulate;
}
#endif
