// The llama.cpp-numerics dots (`GGMLLinear.q4_1Dot` / `q8_0Dot`, the `--numerics llama.cpp` path) for AVX2 + FMA + F16C, bit
// for bit the Swift ones: lane j of a 32-value block sums products 4j..4j+3 exactly (vpmaddwd, then adjacent pairs), one
// FMA per block with (d_w·d_x), `hsum_float_8` at the end; Q4_1 adds Σ fma(m_w, s_x).
#include "CKujiraKernels.h"

#if defined(__x86_64__)
#include "avx2.h"

// Exact lane sums of the weights w0 (values 0..15) and w1 (16..31), as int16, with the 32 int16 codes q.
K_INLINE __m256 lane_sums(__m256i w0, __m256i w1, const int16_t *q) {
    const __m256i m0 = _mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)q));
    const __m256i m1 = _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(q + 16)));
    return _mm256_cvtepi32_ps(_mm256_permute4x64_epi64(_mm256_hadd_epi32(m0, m1), 0xD8));
}

// `hsum_float_8`: (a₀..₃ + a₄..₇), then (0+2) + (1+3).
K_INLINE float hsum8(__m256 a) {
    float q[4];
    _mm_storeu_ps(q, _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)));
    return (q[0] + q[2]) + (q[1] + q[3]);
}

K_AVX2 float kujira_ggml_q4_1_dot(const void *row, const int16_t *q, const float *d, const float *s, long blocks) {
    const unsigned char *base = (const unsigned char *)row;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (long b = 0; b < blocks; b++) {
        const unsigned char *block = base + 20 * b;
        summs = __builtin_fmaf(half_at(block + 2), s[b], summs);
        const float scale = half_at(block) * d[b];
        const __m128i packed = _mm_loadu_si128((const __m128i *)(block + 4));
        const __m256i w0 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0x0F)));
        const __m256i w1 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), lane_sums(w0, w1, q + 32 * b), acc);
    }
    return hsum8(acc) + summs;
}

K_AVX2 float kujira_ggml_q8_0_dot(const void *row, const int16_t *q, const float *d, long blocks) {
    const unsigned char *base = (const unsigned char *)row;
    __m256 acc = _mm256_setzero_ps();
    for (long b = 0; b < blocks; b++) {
        const unsigned char *block = base + 34 * b;
        const float scale = half_at(block) * d[b];
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + 2)));
        const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + 18)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), lane_sums(w0, w1, q + 32 * b), acc);
    }
    return hsum8(acc);
}

#else

float kujira_ggml_q4_1_dot(const void *row, const int16_t *q, const float *d, const float *s, long blocks) {
    (void)row; (void)q; (void)d; (void)s; (void)blocks; return 0;
}
float kujira_ggml_q8_0_dot(const void *row, const int16_t *q, const float *d, long blocks) { (void)row; (void)q; (void)d; (void)blocks; return 0; }

#endif

#if defined(__x86_64__)
// `GGMLMath.reduce16` of (lo, hi): halves (high + low), quarters, then (0+2) + (1+3).
K_INLINE float reduce16(__m256 lo, __m256 hi) {
    const __m256 h = _mm256_add_ps(hi, lo);
    float g[4];
    _mm_storeu_ps(g, _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h)));
    return (g[0] + g[2]) + (g[1] + g[3]);
}

K_INLINE __m256 halves8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

K_AVX2 float kujira_ggml_vector_dot_f16(const float *a, const uint16_t *b, long count) {
    __m256 s[4][2];
    for (int k = 0; k < 4; k++) s[k][0] = s[k][1] = _mm256_setzero_ps();
    const long whole = count & ~63L;
    for (long i = 0; i < whole; i += 64) {
        for (int k = 0; k < 4; k++) {
            s[k][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16 * k), halves8(b + i + 16 * k), s[k][0]);
            s[k][1] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16 * k + 8), halves8(b + i + 16 * k + 8), s[k][1]);
        }
    }
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(s[0][0], s[2][0]), _mm256_add_ps(s[1][0], s[3][0]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(s[0][1], s[2][1]), _mm256_add_ps(s[1][1], s[3][1]));
    double total = reduce16(lo, hi);
    for (long k = whole; k < count; k++) total += (double)(a[k] * _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16((short)b[k]))));
    return (float)total;
}

K_AVX2 float kujira_ggml_dot_f16(const float *a, const uint16_t *b, long count) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (long i = 0; i < count; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), halves8(b + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), halves8(b + i + 8), hi);
    }
    return reduce16(lo, hi);
}

K_AVX2 void kujira_ggml_accumulate_f16(float *acc, const uint16_t *value, long count, float p) {
    for (long d = 0; d < count; d++) acc[16 * d] = __builtin_fmaf(p, _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16((short)value[d]))), acc[16 * d]);
}
#else
float kujira_ggml_vector_dot_f16(const float *a, const uint16_t *b, long count) { (void)a; (void)b; (void)count; return 0; }
float kujira_ggml_dot_f16(const float *a, const uint16_t *b, long count) { (void)a; (void)b; (void)count; return 0; }
void kujira_ggml_accumulate_f16(float *acc, const uint16_t *value, long count, float p) { (void)acc; (void)value; (void)count; (void)p; }
#endif
