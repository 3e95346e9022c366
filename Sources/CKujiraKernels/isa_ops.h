// Private to the CKujiraKernels target: the few operations the integer block dots (quant_dots_body.h) need beyond AVX2,
// for the instruction set the including file is compiled for. `KUJIRA_BUILD_ISA` selects them:
//   KUJIRA_ISA_VNNI  AVX-512 F/BW/VL/VNNI/VBMI on 256-bit registers: vpdpbusd, vpermb, byte masks.
//   KUJIRA_ISA_AVX2  AVX2 + FMA + F16C (Haswell, Zen 1-3, Intel's cores without AVX-512): the same integer results from
//                    vpmaddubsw/vpmaddwd, vpshufb and compare masks, so both give the Swift kernels' bits.
// `K_TARGET` is the function attribute, `K_NAME(f)` the per-ISA name of a public kernel.
#ifndef CKUJIRA_ISA_OPS_H
#define CKUJIRA_ISA_OPS_H
#include <immintrin.h>
#include "kernels_shared.h"

#if KUJIRA_BUILD_ISA == KUJIRA_ISA_VNNI
#define K_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))
#define K_NAME(name) name##_vnni
#elif KUJIRA_BUILD_ISA == KUJIRA_ISA_AVX2
#define K_TARGET __attribute__((target("avx2,fma,f16c")))
#define K_NAME(name) name##_avx2
#else
#error "define KUJIRA_BUILD_ISA before including isa_ops.h"
#endif
#define K_INLINE K_TARGET static inline __attribute__((always_inline))

// Swift's treeSum: halves, then quarters, then the last two lanes.
K_INLINE float tree_sum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(q) + _mm_cvtss_f32(_mm_shuffle_ps(q, q, 1));
}

#if KUJIRA_BUILD_ISA == KUJIRA_ISA_VNNI

// v's bytes permuted across the register: byte i = v[order[i] & 31] (vpermb).
K_INLINE __m256i k_permute_bytes(__m256i order, __m256i v) { return _mm256_permutexvar_epi8(order, v); }
// Bytes of v with bit i of `mask` set negated (wrapping), the others kept.
K_INLINE __m256i k_negate_where(__m256i v, unsigned int mask) { return _mm256_mask_sub_epi8(v, (__mmask32)mask, _mm256_setzero_si256(), v); }
// Bytes of v with bit i of `mask` set kept, the others zero.
K_INLINE __m256i k_keep_bytes(unsigned int mask, __m256i v) { return _mm256_maskz_mov_epi8((__mmask32)mask, v); }
// The bias that turns the q + 128 plane's dot into q·w: −128·(sum of each int32 lane's four s8 weights).
K_INLINE __m256i k_bias(__m256i w) {
    return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), w));
}
// Per int32 lane j: Σ q·w over bytes 4j..4j+3, from the activations `act` (q + 128, u8) and s8 weights w; `bias` from k_bias(w).
K_INLINE __m256i k_lanes(__m256i bias, __m256i act, __m256i w) { return _mm256_dpbusd_epi32(bias, act, w); }
// Lanes for weights known to be non-negative (nibble formats: 0..31): the weights take vpdpbusd's unsigned side and
// q = act ^ 0x80 its signed side — the same exact lane sums as `k_lanes`, and the block's bias vpdpbusd is dropped as
// unused. Used by Q4_0/Q4_1/Q5_0/Q5_1 (single-token dots 6–9% faster than with the bias).
K_INLINE __m256i k_lanes_nibbles(__m256i bias, __m256i act, __m256i w) {
    (void)bias;
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, _mm256_xor_si256(act, _mm256_set1_epi8((char)0x80)));
}

#else

// Bit i of m as an all-ones or zero byte i.
K_INLINE __m256i k_mask_bytes(unsigned int m) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)m), spread), bits), bits);
}
// vpermb from two in-lane vpshufb of each 128-bit half and a blend on bit 4 of the index.
K_INLINE __m256i k_permute_bytes(__m256i order, __m256i v) {
    const __m256i low = _mm256_permute2x128_si256(v, v, 0x00), high = _mm256_permute2x128_si256(v, v, 0x11);
    return _mm256_blendv_epi8(_mm256_shuffle_epi8(low, order), _mm256_shuffle_epi8(high, order), _mm256_slli_epi16(order, 3));
}
K_INLINE __m256i k_negate_where(__m256i v, unsigned int mask) {
    const __m256i m = k_mask_bytes(mask);
    return _mm256_sub_epi8(_mm256_xor_si256(v, m), m);
}
K_INLINE __m256i k_keep_bytes(unsigned int mask, __m256i v) { return _mm256_and_si256(k_mask_bytes(mask), v); }
// Not needed: k_lanes works from q directly (the compiler drops the unused value).
K_INLINE __m256i k_bias(__m256i w) { (void)w; return _mm256_setzero_si256(); }
// q = act ^ 0x80 (s8), then vpmaddubsw(|w|, sign(q, w)) — pairs of |w|·|q| ≤ 2·128·127 never saturate — and vpmaddwd by 1:
// the same exact int32 lane sums as vpdpbusd with the bias.
K_INLINE __m256i k_lanes(__m256i bias, __m256i act, __m256i w) {
    (void)bias;
    const __m256i q = _mm256_xor_si256(act, _mm256_set1_epi8((char)0x80));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(q, w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}
// Weights 0..31 need no sign transfer: vpmaddubsw(w, q) directly (pairs ≤ 2·31·127).
K_INLINE __m256i k_lanes_unsigned(__m256i bias, __m256i act, __m256i w) {
    (void)bias;
    const __m256i q = _mm256_xor_si256(act, _mm256_set1_epi8((char)0x80));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, q), _mm256_set1_epi16(1));
}
K_INLINE __m256i k_lanes_nibbles(__m256i bias, __m256i act, __m256i w) { return k_lanes_unsigned(bias, act, w); }

#endif
#endif
