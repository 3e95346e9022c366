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
// The 32 nibbles of a Q4_0/Q4_1 block (16 packed bytes: value i low nibble of byte i, value 16 + i its high nibble), or
// of a Q5_0/Q5_1 block with `five` (bit i of qh or-ed in as 16), in the activation order `order` (block_order).
K_INLINE __m256i k_ordered_nibbles(__m256i order, const unsigned char *packed, int five, unsigned int qh) {
    const __m128i p = _mm_loadu_si128((const __m128i *)packed);
    __m256i natural = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0F));
    if (five) natural = _mm256_or_si256(natural, k_keep_bytes(qh, _mm256_set1_epi8(0x10)));
    return k_permute_bytes(order, natural);
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
// The block_order permutation (the only `order` the kernels pass; not a general vpermb): each lane's even values then odd
// values (vpshufb), the even halves to the low lane and the odd to the high one (vpermq), then each lane into
// [v0, v2, v16, v18, v4, …] / [v1, v3, v17, v19, …] (vpshufb): 3 instructions instead of the 6 of two in-lane shuffles
// and a blend (CBlockDotTests compare every format against the Swift kernels).
K_INLINE __m256i k_permute_bytes(__m256i order, __m256i v) {
    (void)order;
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i place = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
    return _mm256_shuffle_epi8(_mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, split), 0xD8), place);
}
// k_ordered_nibbles without a cross-lane permutation: byte p of block_order needs value v = 4j + {0, 2, 16, 18} (+1 in the
// high lane), i.e. the low nibble of packed byte v (v < 16) or the high nibble of byte v − 16: one vpshufb of the
// broadcast 16 bytes picks bytes (4j, 4j + 2, 4j, 4j + 2) and a word blend takes the high nibbles for positions 2 and 3.
// The fifth bits of Q5 come the same way: byte (v >> 3) of qh, bit v & 7.
K_INLINE __m256i k_ordered_nibbles(__m256i order, const unsigned char *packed, int five, unsigned int qh) {
    (void)order;
    const __m256i gather = _mm256_setr_epi8(0, 2, 0, 2, 4, 6, 4, 6, 8, 10, 8, 10, 12, 14, 12, 14, 1, 3, 1, 3, 5, 7, 5, 7, 9, 11, 9, 11, 13, 15, 13, 15);
    const __m256i t = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)packed)), gather);
    __m256i w = _mm256_and_si256(_mm256_blend_epi16(t, _mm256_srli_epi16(t, 4), 0xAA), _mm256_set1_epi8(0x0F));
    if (five) {
        const __m256i byte_of = _mm256_setr_epi8(0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3, 3, 1, 1, 3, 3, 0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3, 3, 1, 1, 3, 3);
        const __m256i bit_of = _mm256_setr_epi8(1, 4, 1, 4, 16, 64, 16, 64, 1, 4, 1, 4, 16, 64, 16, 64,
                                                2, 8, 2, 8, 32, (char)128, 32, (char)128, 2, 8, 2, 8, 32, (char)128, 32, (char)128);
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), byte_of), bit_of), bit_of);
        w = _mm256_or_si256(w, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    return w;
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
