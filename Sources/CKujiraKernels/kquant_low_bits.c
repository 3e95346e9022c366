// Q2_K and Q3_K dots for AVX2 (include/CKujiraKernels.h, `kujira_q2_k_dot_rows`): the Swift `Q2_K.dot`/`Q3_K.dot` bit for
// bit. Each 16-value group's integer dot with the int16 activation lanes is exact (vpmaddwd on the weights' even and odd
// bytes against `Q8Row.lanes`' [even | odd] halves, two groups per 256-bit register); the float operations after it are
// the Swift ones in the same order. A row's weights are unpacked once for up to four tokens.
#include "CKujiraKernels.h"

#if defined(__x86_64__)
#include "avx2.h"

// Σ u·a of groups g (low half of `u`: its 16 weights as bytes) and g + 1 (high half) with the token's lanes.
K_INLINE void group_dots(__m256i u, const int16_t *lanes, int g, int *dot0, int *dot1) {
    const __m256i evens = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(lanes + 16 * (g + 1))), _mm_loadu_si128((const __m128i *)(lanes + 16 * g)));
    const __m256i odds = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(lanes + 16 * (g + 1) + 8)),
                                          _mm_loadu_si128((const __m128i *)(lanes + 16 * g + 8)));
    __m256i p = _mm256_add_epi32(_mm256_madd_epi16(_mm256_and_si256(u, _mm256_set1_epi16(0x00FF)), evens),
                                 _mm256_madd_epi16(_mm256_srli_epi16(u, 8), odds));
    p = _mm256_add_epi32(p, _mm256_shuffle_epi32(p, 0x4E));
    p = _mm256_add_epi32(p, _mm256_shuffle_epi32(p, 0xB1));
    *dot0 = _mm256_extract_epi32(p, 0);
    *dot1 = _mm256_extract_epi32(p, 4);
}

// Signed 6-bit scale k of a Q3_K super-block, as `Q3_K.scale`.
K_INLINE int q3_scale(const unsigned char *block, int k) {
    const int low = (block[96 + (k & 7)] >> (4 * (k >> 3))) & 0x0F, high = (block[104 + (k & 3)] >> (2 * (k >> 2))) & 0x03;
    return (low | high << 4) - 32;
}

// One row with `ntok` ≤ 4 tokens; token t's lanes/scales/sums at `t * cols`, `t * cols / 32`, `t * cols / 16`.
K_INLINE void row_tokens(int three, const unsigned char *row, int blocks, int ntok, const int16_t *lanes, const float *act_scales,
                         const int32_t *act_sums, float *out, int out_stride) {
    const long cols = (long)blocks * 256;
    float acc[4] = {0, 0, 0, 0};
    for (int b = 0; b < blocks; b++) {
        const unsigned char *block = row + (size_t)b * (three ? 110 : 84);
        float sumf[4] = {0, 0, 0, 0};
        const __m256i masks = three ? _mm256_loadu_si256((const __m256i *)block) : _mm256_setzero_si256();   // m0 | m1
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(block + (three ? 32 : 16) + 32 * h));   // q0 | q1
            for (int j = 0; j < 4; j++) {
                const int r = 4 * h + j, g = 16 * b + 2 * r;
                __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(0x03));
                if (three)
                    u = _mm256_or_si256(u, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(masks, 4 * h + j), _mm256_set1_epi8(0x01)), 2));
                for (int t = 0; t < ntok; t++) {
                    const int32_t *sums = act_sums + (size_t)t * (cols / 16);
                    const float x_scale = act_scales[(size_t)t * (cols / 32) + 8 * b + r];
                    int dot0, dot1;
                    group_dots(u, lanes + (size_t)t * cols, g, &dot0, &dot1);
                    if (three) {
                        dot0 -= 4 * sums[g];
                        dot1 -= 4 * sums[g + 1];
                        sumf[t] += x_scale * (float)(q3_scale(block, 2 * r) * dot0 + q3_scale(block, 2 * r + 1) * dot1);
                    } else {
                        const int s0 = block[2 * r], s1 = block[2 * r + 1];
                        const int isum = (s0 & 0x0F) * dot0 + (s1 & 0x0F) * dot1, msum = (s0 >> 4) * sums[g] + (s1 >> 4) * sums[g + 1];
                        sumf[t] += x_scale * (half_at(block + 80) * (float)isum - half_at(block + 82) * (float)msum);
                    }
                }
            }
        }
        for (int t = 0; t < ntok; t++) acc[t] += three ? half_at(block + 108) * sumf[t] : sumf[t];
    }
    for (int t = 0; t < ntok; t++) out[(size_t)t * out_stride] = acc[t];
}

// A chunk of 16 rows against every group of four tokens, as `Linear.quantized`.
K_INLINE void dot_rows(int three, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                       const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride) {
    const unsigned char *base = (const unsigned char *)rows;
    const long cols = (long)blocks * 256;
    for (int first = row_begin; first < row_end; first += 16) {
        const int end = first + 16 < row_end ? first + 16 : row_end;
        for (int t = 0; t < ntok; t += 4) {
            const int count = ntok - t < 4 ? ntok - t : 4;
            for (int r = first; r < end; r++)
                row_tokens(three, base + (size_t)r * row_bytes, blocks, count, lanes + (size_t)t * cols, act_scales + (size_t)t * (cols / 32),
                           act_sums + (size_t)t * (cols / 16), out + (size_t)t * out_stride + r, out_stride);
        }
    }
}

K_AVX2 void kujira_q2_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                                 const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride) {
    dot_rows(0, rows, row_bytes, row_begin, row_end, blocks, lanes, act_scales, act_sums, ntok, out, out_stride);
}

K_AVX2 void kujira_q3_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                                 const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride) {
    dot_rows(1, rows, row_bytes, row_begin, row_end, blocks, lanes, act_scales, act_sums, ntok, out, out_stride);
}

#else

void kujira_q2_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                          const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride) {
    (void)rows; (void)row_bytes; (void)row_begin; (void)row_end; (void)blocks; (void)lanes; (void)act_scales; (void)act_sums; (void)ntok;
    (void)out; (void)out_stride;
}

void kujira_q3_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                          const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride) {
    (void)rows; (void)row_bytes; (void)row_begin; (void)row_end; (void)blocks; (void)lanes; (void)act_scales; (void)act_sums; (void)ntok;
    (void)out; (void)out_stride;
}

#endif
