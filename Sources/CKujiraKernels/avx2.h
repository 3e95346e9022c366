// Private to the CKujiraKernels target: what the AVX2 + FMA + F16C kernel files share. Include inside `#if defined(__x86_64__)`.
// Floating-point contraction is off from here on: the kernels must do exactly the Swift references' roundings, and clang
// would otherwise fuse `a * b + c` into an FMA.
#ifndef CKUJIRA_AVX2_H
#define CKUJIRA_AVX2_H
#include <immintrin.h>

#pragma clang fp contract(off)

// A file may define K_AVX2 first to build the same code for a wider target (kquant_gemm8_vnni.c).
#ifndef K_AVX2
#define K_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif
#define K_INLINE K_AVX2 static inline __attribute__((always_inline))

// The IEEE half at p as a Float (exact), by a full-width conversion (`_cvtsh_ss` merges into a live register: a false
// dependency, docs/kernels.md).
K_INLINE float half_at(const unsigned char *p) {
    short h;
    __builtin_memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(h)));
}

// round-half-even(v · inverse) as int32 by the 1.5·2^23 trick, for |v · inverse| ≤ 2^22 (never traps: NaN/inf give
// meaningless codes), as Swift's `(v * inverse).rounded(.toNearestOrEven)`; the activation quantizers share it.
K_INLINE __m256i round_codes(__m256 v, __m256 inverse) {
    const __m256 shifted = _mm256_add_ps(_mm256_mul_ps(v, inverse), _mm256_set1_ps(12582912.0f));
    return _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
}

// Swift's `treeSum` of 8 lanes: halves, then quarters, then the last two.
K_INLINE float tree_sum8(__m256 v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(q) + _mm_cvtss_f32(_mm_shuffle_ps(q, q, 1));
}

#endif
