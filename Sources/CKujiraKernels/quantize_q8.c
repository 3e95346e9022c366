// Activation quantization for the integer block dots (include/CKujiraKernels.h, `kujira_q8_quantize_blocks`): the Swift
// `Q8Activations.quantizeBlock` for AVX2 + FMA + F16C, bit for bit — the same scale, codes, sums and byte plane.
#include "CKujiraKernels.h"
#include "kernels_shared.h"

#if defined(__x86_64__)
#include <math.h>
#include "avx2.h"

// 16 int32 codes (lo: values 0..7, hi: 8..15) truncated to int16, in value order.
K_INLINE __m256i narrow16(__m256i lo, __m256i hi) {
    const __m256i low16 = _mm256_set1_epi32(0xFFFF);
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_and_si256(lo, low16), _mm256_and_si256(hi, low16)), 0xD8);
}

// 16 int16 values → [the 8 even-indexed | the 8 odd-indexed].
K_INLINE __m256i even_odd(__m256i v) {
    const __m256i gather = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    return _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, gather), 0xD8);
}

// Σ of 16 int16 lanes, wrapping in int16 as Swift's `wrappedSum()`, then widened.
K_INLINE int32_t wrapped_sum16(__m256i v) {
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_madd_epi16(v, _mm256_set1_epi16(1)));
    int32_t s = 0;
    for (int i = 0; i < 8; i++) s += lanes[i];
    return (int32_t)(int16_t)s;
}

K_AVX2 void kujira_q8_quantize_blocks(const float *x, long blocks, int16_t *lanes, float *scales, float *scaled_sums, int32_t *sums,
                                      float *scale_vectors, uint8_t *plane) {
    const __m256i exponent = _mm256_set1_epi32(0x7F800000), magnitude = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i order = _mm256_loadu_si256((const __m256i *)block_order);
    for (long b = 0; b < blocks; b++) {
        const float *values = x + 32 * b;
        __m256 v[4];
        __m256i special = _mm256_setzero_si256();
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(values + 8 * i);
            const __m256i bits = _mm256_castps_si256(v[i]);
            special = _mm256_or_si256(special, _mm256_cmpeq_epi32(_mm256_and_si256(bits, exponent), exponent));
            m = _mm256_max_ps(m, _mm256_castsi256_ps(_mm256_and_si256(bits, magnitude)));
        }
        const int finite = _mm256_testz_si256(special, special);
        float lanes_max[8];
        _mm256_storeu_ps(lanes_max, m);
        float amax = 0;
        for (int i = 0; i < 8; i++) amax = lanes_max[i] > amax ? lanes_max[i] : amax;
        if (!finite) amax = 0;
        const float d = finite ? amax / 127 : NAN;
        const float inverse = finite && amax > 0 ? 127 / amax : 0;
        const float half = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT)));
        const float scale = d >= 0x1p-14f && half <= 65504.0f ? half : d;
        const __m256 inv = _mm256_set1_ps(inverse);
        const __m256i low = narrow16(round_codes(v[0], inv), round_codes(v[1], inv));
        const __m256i high = narrow16(round_codes(v[2], inv), round_codes(v[3], inv));
        _mm256_storeu_si256((__m256i *)(lanes + 32 * b), even_odd(low));
        _mm256_storeu_si256((__m256i *)(lanes + 32 * b + 16), even_odd(high));
        const int32_t sum0 = wrapped_sum16(low), sum1 = wrapped_sum16(high);
        sums[2 * b] = sum0;
        sums[2 * b + 1] = sum1;
        scales[b] = scale;
        scaled_sums[b] = scale * (float)(sum0 + sum1);
        _mm256_storeu_ps(scale_vectors + 8 * b, _mm256_set1_ps(scale));
        if (plane) {
            // Low bytes of the 32 codes in value order, + 128 (xor), then byte p = value block_order[p].
            const __m256i byte = _mm256_set1_epi16(0x00FF);
            __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(_mm256_and_si256(low, byte), _mm256_and_si256(high, byte)), 0xD8);
            bytes = _mm256_xor_si256(bytes, _mm256_set1_epi8((char)0x80));
            const __m256i left = _mm256_permute2x128_si256(bytes, bytes, 0x00), right = _mm256_permute2x128_si256(bytes, bytes, 0x11);
            bytes = _mm256_blendv_epi8(_mm256_shuffle_epi8(left, order), _mm256_shuffle_epi8(right, order), _mm256_slli_epi16(order, 3));
            _mm256_storeu_si256((__m256i *)(plane + 32 * b), bytes);
        }
    }
}

#else

void kujira_q8_quantize_blocks(const float *x, long blocks, int16_t *lanes, float *scales, float *scaled_sums, int32_t *sums,
                               float *scale_vectors, uint8_t *plane) {
    (void)x; (void)blocks; (void)lanes; (void)scales; (void)scaled_sums; (void)sums; (void)scale_vectors; (void)plane;
}

#endif
