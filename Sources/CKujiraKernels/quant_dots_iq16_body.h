// The dots of the IQ formats with a scale per 16 values (IQ2_XS, IQ2_S, IQ1_M): see include/CKujiraKernels.h and
// docs/kernels.md. Each run's 32 grid values are split into its two halves (the other half's bytes zeroed), each half
// one vpdpbusd into the lanes the Swift kernel's `multiplyAddPairs(lanes0, x.0)` / `(lanes1, x.1)` produce, and two
// FMAs with their own scales, in the Swift order.
// Included only by quant_dots_vnni.c and quant_dots_avx2.c, after quant_dots_body.h.


// IQ1_M (56-byte super-blocks): per group of 8 an 11-bit index into the ternary grid and its own ±1 shift (values
// 8·g ± 1), 3-bit scales per 16 values, and the super-block's f16 scale assembled from the scale words' top nibbles.
enum { IQ2_XS = 0, IQ2_S = 1, IQ1_M = 2 };

// Run b (& 7) of super-block b >> 3: the two halves' s8 weights in activation order, their biases (−128·Σw per lane)
// and scales d·(0.5 + s)·0.25.
K_TARGET static inline __attribute__((always_inline)) void load_run16(int format, const unsigned char *row, int b, const uint8_t *ksigns,
                                                                         const uint64_t *grid, __m256i order, __m256i *w0, __m256i *w1,
                                                                         __m256i *bias0, __m256i *bias1, __m256 *d0, __m256 *d1) {
    const int run = b & 7;
    if (format == IQ1_M) {
        const unsigned char *block = row + (size_t)(b >> 3) * 56;
        unsigned long long g[4], delta[4];
        const unsigned char *qs = block + 4 * run, *qh = block + 32 + 2 * run;   // groups 4r..4r+3: two qh bytes
        for (int l = 0; l < 4; l++) {
            const unsigned int nibble = (qh[l >> 1] >> (4 * (l & 1))) & 0x0F;
            g[l] = grid[qs[l] | (nibble & 7) << 8];
            delta[l] = (nibble & 8) ? 0xFFFFFFFFFFFFFFFFull : 0x0101010101010101ull;   // −1 or +1 in every byte
        }
        __m256i t = _mm256_set_epi64x((long long)g[3], (long long)g[2], (long long)g[1], (long long)g[0]);
        t = _mm256_add_epi8(t, t); t = _mm256_add_epi8(t, t); t = _mm256_add_epi8(t, t);   // 8·g, exact in s8
        const __m256i natural = _mm256_add_epi8(t, _mm256_set_epi64x((long long)delta[3], (long long)delta[2], (long long)delta[1], (long long)delta[0]));
        *w0 = k_permute_bytes(order, k_keep_bytes(0x0000FFFFu, natural));
        *w1 = k_permute_bytes(order, k_keep_bytes(0xFFFF0000u, natural));
        *bias0 = k_bias(*w0);
        *bias1 = k_bias(*w1);
        unsigned long long words;
        __builtin_memcpy(&words, block + 48, 8);
        const unsigned short bits = (unsigned short)(((words >> 12) & 0x000F) | ((words >> 24) & 0x00F0) | ((words >> 36) & 0x0F00)
                                                     | ((words >> 48) & 0xF000));
        const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16((short)bits)), eighth = _mm256_set1_ps(0.125f);
        const unsigned int word = (unsigned int)(words >> (16 * (run / 2))) & 0xFFFF, shift = 6 * (run & 1);
        *d0 = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_set1_epi32(2 * (int)((word >> shift) & 7) + 1))), eighth);
        *d1 = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_set1_epi32(2 * (int)((word >> (shift + 3)) & 7) + 1))), eighth);
        (void)ksigns;
        return;
    }
    const unsigned char *block = row + (size_t)(b >> 3) * (format == IQ2_XS ? 74 : 82);
    unsigned long long g[4];
    unsigned int signs = 0;
    unsigned char s;
    if (format == IQ2_XS) {
        for (int l = 0; l < 4; l++) {
            unsigned short q;
            __builtin_memcpy(&q, block + 2 + 2 * (4 * run + l), 2);
            g[l] = grid[q & 511];
            signs |= (unsigned int)ksigns[q >> 9] << (8 * l);
        }
        s = block[66 + run];
    } else {
        const unsigned char qh = block[66 + run];
        for (int l = 0; l < 4; l++) g[l] = grid[block[2 + 4 * run + l] | ((qh >> (2 * l)) & 3) << 8];
        __builtin_memcpy(&signs, block + 34 + 4 * run, 4);
        s = block[74 + run];
    }
    __m256i natural = _mm256_set_epi64x((long long)g[3], (long long)g[2], (long long)g[1], (long long)g[0]);
    natural = k_negate_where(natural, signs);
    *w0 = k_permute_bytes(order, k_keep_bytes(0x0000FFFFu, natural));
    *w1 = k_permute_bytes(order, k_keep_bytes(0xFFFF0000u, natural));
    *bias0 = k_bias(*w0);
    *bias1 = k_bias(*w1);
    short h;
    __builtin_memcpy(&h, block, 2);
    const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(h)), quarter = _mm256_set1_ps(0.25f), half = _mm256_set1_ps(0.5f);
    *d0 = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_add_ps(half, _mm256_cvtepi32_ps(_mm256_set1_epi32(s & 0x0F)))), quarter);
    *d1 = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_add_ps(half, _mm256_cvtepi32_ps(_mm256_set1_epi32(s >> 4)))), quarter);
}

// One token's run: acc += Float(lanes0)·(d_x·s0), then += Float(lanes1)·(d_x·s1), as the Swift `dot`.
#define KUJIRA_TERM16(acc, t) do { \
    const __m256i x = _mm256_loadu_si256((const __m256i *)(act + (size_t)(t) * act_stride + (size_t)b * 32)); \
    const __m256 dx = _mm256_set1_ps(act_scales[(size_t)(t) * runs + b]); \
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_lanes(bias0, x, w0)), _mm256_mul_ps(dx, d0), acc); \
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_lanes(bias1, x, w1)), _mm256_mul_ps(dx, d1), acc); \
} while (0)

K_TARGET static inline __attribute__((always_inline)) void rows16(int format, const uint8_t *ksigns, const uint64_t *grid, const void *rows,
                                                                     size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act,
                                                                     const float *act_scales, int ntok, float *out, int out_stride) {
    const __m256i order = _mm256_loadu_si256((const __m256i *)block_order);
    const unsigned char *base = (const unsigned char *)rows;
    const size_t act_stride = (size_t)runs * 32;
    for (int first = row_begin; first < row_end; first += 16) {
        const int end = first + 16 < row_end ? first + 16 : row_end;
        int t0 = 0;
        for (; t0 + 4 <= ntok; t0 += 4) {
            for (int r = first; r < end; r++) {
                const unsigned char *row = base + (size_t)r * row_bytes;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int b = 0; b < runs; b++) {
                    __m256i w0, w1, bias0, bias1;
                    __m256 d0, d1;
                    load_run16(format, row, b, ksigns, grid, order, &w0, &w1, &bias0, &bias1, &d0, &d1);
                    KUJIRA_TERM16(a0, t0); KUJIRA_TERM16(a1, t0 + 1); KUJIRA_TERM16(a2, t0 + 2); KUJIRA_TERM16(a3, t0 + 3);
                }
                out[(size_t)t0 * out_stride + r] = tree_sum(a0);
                out[(size_t)(t0 + 1) * out_stride + r] = tree_sum(a1);
                out[(size_t)(t0 + 2) * out_stride + r] = tree_sum(a2);
                out[(size_t)(t0 + 3) * out_stride + r] = tree_sum(a3);
            }
        }
        for (int t = t0; t < ntok; t++) {
            for (int r = first; r < end; r++) {
                const unsigned char *row = base + (size_t)r * row_bytes;
                __m256 a0 = _mm256_setzero_ps();
                for (int b = 0; b < runs; b++) {
                    __m256i w0, w1, bias0, bias1;
                    __m256 d0, d1;
                    load_run16(format, row, b, ksigns, grid, order, &w0, &w1, &bias0, &bias1, &d0, &d1);
                    KUJIRA_TERM16(a0, t);
                }
                out[(size_t)t * out_stride + r] = tree_sum(a0);
            }
        }
    }
}

K_TARGET void K_NAME(kujira_iq2_16_dot_rows)(int is_s, const uint8_t *ksigns, const uint64_t *grid, const void *rows, size_t row_bytes,
                                          int row_begin, int row_end, int runs, const uint8_t *act, const float *act_scales, int ntok,
                                          float *out, int out_stride) {
    if (is_s == 2) rows16(IQ1_M, ksigns, grid, rows, row_bytes, row_begin, row_end, runs, act, act_scales, ntok, out, out_stride);
    else if (is_s) rows16(IQ2_S, ksigns, grid, rows, row_bytes, row_begin, row_end, runs, act, act_scales, ntok, out, out_stride);
    else rows16(IQ2_XS, ksigns, grid, rows, row_bytes, row_begin, row_end, runs, act, act_scales, ntok, out, out_stride);
}

