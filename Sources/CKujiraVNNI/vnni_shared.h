// Private to the CKujiraVNNI target: what its kernel files share.
#ifndef CKUJIRA_VNNI_SHARED_H
#define CKUJIRA_VNNI_SHARED_H

// Byte position -> value index of a 32-value activation block (`kujira_vnni_block_order`): int32 lane j of vpdpbusd
// sums the same four products as the Swift kernels' `vpmaddwd` lane j.
static const unsigned char block_order[32] = {
    0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30,
    1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31,
};

#if defined(__x86_64__)
#include <immintrin.h>

#define KUJIRA_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))

// Swift's treeSum: halves, then quarters, then the last two lanes.
KUJIRA_VNNI static inline float tree_sum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(q) + _mm_cvtss_f32(_mm_shuffle_ps(q, q, 1));
}
#endif

#endif
