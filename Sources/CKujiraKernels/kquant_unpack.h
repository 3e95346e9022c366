// Private to the CKujiraKernels target: unpacking Q4_K / Q5_K / Q6_K super-blocks into registers, shared by the per-row
// K-quant kernels (kquant_q8k.c) and the eight-rows prompt path in both of its builds (kquant_gemm8.h: AVX2 there,
// AVX-512 VNNI in kquant_gemm8_vnni.c). Include after avx2.h (its `K_INLINE` gives the including file's target).
#ifndef CKUJIRA_KQUANT_UNPACK_H
#define CKUJIRA_KQUANT_UNPACK_H
#include <immintrin.h>

// The 8 six-bit scales and mins of a Q4_K / Q5_K super-block (12 packed bytes at block + 4), each in the low int16 of its
// int32 lane k and copied into the high int16 (so `vpmaddwd` multiplies both halves of a pair by it).
K_INLINE void k_scale_pairs(const unsigned char *block, __m256i *scales, __m256i *mins) {
    unsigned int w0, w1, w2;
    __builtin_memcpy(&w0, block + 4, 4);
    __builtin_memcpy(&w1, block + 8, 4);
    __builtin_memcpy(&w2, block + 12, 4);
    const unsigned int scales_low = w0 & 0x3F3F3F3Fu, mins_low = w1 & 0x3F3F3F3Fu;
    const unsigned int scales_high = (w2 & 0x0F0F0F0Fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const unsigned int mins_high = ((w2 >> 4) & 0x0F0F0F0Fu) | (((w1 >> 6) & 0x03030303u) << 4);
    const __m256i shifts = _mm256_set_epi32(24, 16, 8, 0, 24, 16, 8, 0), byte = _mm256_set1_epi32(0xFF);
    const __m256i s = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set_epi32((int)scales_high, (int)scales_high, (int)scales_high, (int)scales_high,
                                                                          (int)scales_low, (int)scales_low, (int)scales_low, (int)scales_low), shifts), byte);
    const __m256i m = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set_epi32((int)mins_high, (int)mins_high, (int)mins_high, (int)mins_high,
                                                                          (int)mins_low, (int)mins_low, (int)mins_low, (int)mins_low), shifts), byte);
    *scales = _mm256_or_si256(s, _mm256_slli_epi32(s, 16));
    *mins = _mm256_or_si256(m, _mm256_slli_epi32(m, 16));
}

// Runs 2c and 2c + 1 of a Q4_K / Q5_K super-block as bytes in value order (0..15, or 0..31 with Q5_K's fifth bit: bit 2c /
// 2c + 1 of qh[i] is the fifth bit of value i of run 2c / 2c + 1).
K_INLINE void k_runs(int five, const unsigned char *block, __m256i high, int c, __m256i low4, __m256i *lo, __m256i *hi) {
    const __m256i packed = _mm256_loadu_si256((const __m256i *)(block + (five ? 48 : 16) + 32 * c));
    *lo = _mm256_and_si256(packed, low4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
    if (five) {
        const __m256i one = _mm256_set1_epi8(1);
        *lo = _mm256_or_si256(*lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * c), one), 4));
        *hi = _mm256_or_si256(*hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * c + 1), one), 4));
    }
}

// Run r (values 32r..32r+31) of a Q6_K super-block as bytes 0..63 in value order: low 4 bits from ql, high 2 from qh.
K_INLINE __m256i q6_run(const unsigned char *block, int r) {
    const int h = r >> 2, j = r & 3;
    const __m256i ql = _mm256_loadu_si256((const __m256i *)(block + 64 * h + 32 * (j & 1)));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(block + 128 + 32 * h));
    return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql, 4 * (j >> 1)), _mm256_set1_epi8(0x0F)),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), _mm256_set1_epi8(0x03)), 4));
}

#endif
