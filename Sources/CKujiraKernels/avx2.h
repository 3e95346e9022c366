// Private to the CKujiraKernels target: what the AVX2 + FMA + F16C kernel files share. Include inside `#if defined(__x86_64__)`.
// Floating-point contraction is off from here on: the kernels must do exactly the Swift references' roundings, and clang
// would otherwise fuse `a * b + c` into an FMA.
#ifndef CKUJIRA_AVX2_H
#define CKUJIRA_AVX2_H
#include <immintrin.h>

#pragma clang fp contract(off)

#define K_AVX2 __attribute__((target("avx2,fma,f16c")))
#define K_INLINE K_AVX2 static inline __attribute__((always_inline))

// The IEEE half at p as a Float (exact), by a full-width conversion (`_cvtsh_ss` merges into a live register: a false
// dependency, docs/kernels.md).
K_INLINE float half_at(const unsigned char *p) {
    short h;
    __builtin_memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(h)));
}

#endif
