// Q4_K / Q5_K / Q6_K dots on Q8_K activations (include/CKujiraKernels.h, `kujira_q8k_quantize`, `kujira_k_q8k_dot_rows`): the
// Swift `Q8KActivations.quantizeBlock` and `KQuantQ8K.dot` / `q6Dot` bit for bit. AVX2 + FMA + F16C (also what runs on AVX-512 CPUs).
//
// Activations: one float scale per 256 values (llama.cpp's q8_K: d = 1/iscale with iscale = −127/max, max the value of
// largest magnitude), int8 codes in value order, int16 sums per 16 codes. Weights: the stored super-blocks, unpacked in
// registers (no permutation: int32 lane j of a run sums its values 4j..4j+3). Per super-block and token the 8 runs'
// integer products are scaled by their 6-bit scales in integer (`vpmaddwd` with the scale in both int16 halves).
// Q4_K / Q5_K: the super-block's whole integer sum and its min term Σ min_k·Σcodes_k are exact int32 scalars, and the float
// work is two scalar FMAs per 256 values and token, acc = fma(d·d_x, sum, acc), acc = fma(−(dmin·d_x), mins, acc), so a
// row's result is the same whichever way its integer lanes were laid out: eight rows per register for prompt batches
// (kquant_gemm8.h), one row at a time below. Q6_K likewise, with one FMA: acc = fma(d·d_x, sum − 32·offset, acc).
// docs/kernels.md, "K-quants on Q8_K activations".
#include "CKujiraKernels.h"

#if defined(__x86_64__)
#include <math.h>
#include "avx2.h"
#include "quant_dots_decl.h"
#include "transpose8.h"

K_AVX2 void kujira_q8k_quantize(const float *x, long blocks, int8_t *codes, float *scales, int16_t *sums) {
    const __m256i exponent = _mm256_set1_epi32(0x7F800000), magnitude = _mm256_set1_epi32(0x7FFFFFFF);
    for (long b = 0; b < blocks; b++) {
        const float *v = x + 256 * b;
        __m256i special = _mm256_setzero_si256();
        __m256 amax8 = _mm256_setzero_ps(), max8 = _mm256_set1_ps(-INFINITY);
        for (int i = 0; i < 32; i++) {
            const __m256 value = _mm256_loadu_ps(v + 8 * i);
            const __m256i bits = _mm256_castps_si256(value);
            special = _mm256_or_si256(special, _mm256_cmpeq_epi32(_mm256_and_si256(bits, exponent), exponent));
            amax8 = _mm256_max_ps(amax8, _mm256_castsi256_ps(_mm256_and_si256(bits, magnitude)));
            max8 = _mm256_max_ps(max8, value);
        }
        float lanes_amax[8], lanes_max[8];
        _mm256_storeu_ps(lanes_amax, amax8);
        _mm256_storeu_ps(lanes_max, max8);
        float amax = 0, top = -INFINITY;
        for (int i = 0; i < 8; i++) {
            amax = lanes_amax[i] > amax ? lanes_amax[i] : amax;
            top = lanes_max[i] > top ? lanes_max[i] : top;
        }
        int8_t *q = codes + 256 * b;
        int16_t *s = sums + 16 * b;
        const float iscale = -127.0f / (top == amax ? amax : -amax);
        const int finite = _mm256_testz_si256(special, special);
        if (!finite || !isfinite(iscale)) {   // amax 0, or so small that 127 / amax overflows
            __builtin_memset(q, 0, 256);
            __builtin_memset(s, 0, 32);
            scales[b] = finite ? 0 : NAN;
            continue;
        }
        const __m256 inverse = _mm256_set1_ps(iscale);
        for (int g = 0; g < 8; g++) {   // 32 values: four groups of 8 codes → 32 bytes
            __m256i c[4];
            for (int i = 0; i < 4; i++) {
                c[i] = _mm256_min_epi32(round_codes(_mm256_loadu_ps(v + 32 * g + 8 * i), inverse), _mm256_set1_epi32(127));
            }
            // packs keeps 128-bit lanes apart: [c0 lo, c1 lo, c0 hi, c1 hi] → fix the order with one permute.
            const __m256i words01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(c[0], c[1]), 0xD8);   // values 0..15 as int16
            const __m256i words23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(c[2], c[3]), 0xD8);   // values 16..31
            const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(words01, words23), 0xD8);
            _mm256_storeu_si256((__m256i *)(q + 32 * g), bytes);
            const __m256i ones = _mm256_set1_epi16(1);
            __m256i pair01 = _mm256_madd_epi16(words01, ones), pair23 = _mm256_madd_epi16(words23, ones);   // int32 sums of 2
            // Sum of each 16 codes: lanes 0..3 and 4..7 of pair01 (values 0..7, 8..15), likewise pair23.
            __m256i h = _mm256_hadd_epi32(pair01, pair23);   // [p01 0+1, 2+3, p23 0+1, 2+3 | p01 4+5, 6+7, p23 4+5, 6+7]
            h = _mm256_hadd_epi32(h, h);                       // [p01 0..3, p23 0..3, … | p01 4..7, p23 4..7, …]
            int32_t lanes[8];
            _mm256_storeu_si256((__m256i *)lanes, h);
            s[2 * g] = (int16_t)(lanes[0] + lanes[4]);
            s[2 * g + 1] = (int16_t)(lanes[1] + lanes[5]);
        }
        scales[b] = 1.0f / iscale;
    }
}

#include "kquant_unpack.h"
#include "kquant_gemm8.h"

// Tokens per register tile of the per-row prefill loop (`k_rows`).
#define K_TILE_TOKENS 8

// The exact sums of the eight int32 lanes of a and of b (integer adds: any order gives the same value) as floats, rounded
// once: lanes 0–1 Σa, lanes 2–3 Σb.
K_INLINE __m128 lane_sums2(__m256i a, __m256i b) {
    // [a0+a2, a1+a3, b0+b2, b1+b3 | a4+a6, a5+a7, b4+b6, b5+b7]
    const __m256i h = _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
    const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    return _mm_cvtepi32_ps(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));   // [Σa, Σa, Σb, Σb]
}

// One super-block's float step for one row and token in lane 0 of `acc` (the Swift reference's order: two FMAs on the exact
// integer sums, lanes 0 and 2 of `sums`). In registers: a float accumulator array indexed by token stays in memory, and
// its store and reload then sit on the loop-carried chain.
K_INLINE __m128 k_step(__m128 acc, float d, float dmin, float dx, __m128 sums) {
    acc = _mm_fmadd_ss(_mm_set_ss(d * dx), sums, acc);
    return _mm_fmadd_ss(_mm_set_ss(-(dmin * dx)), _mm_movehl_ps(sums, sums), acc);
}

// The integer lanes of one Q4_K / Q5_K super-block against tokens t < nt (a constant where inlined), the weights unpacked
// once: sumi[t] lane j = Σ_k scale_k · (values 4j..4j+3 of run k · their codes), mins[t] lane k = min_k · Σ codes of run k.
// Token t's codes of this super-block at x + t·code_stride, its 16-code sums at s16 + t·s16_stride.
K_INLINE void k_block(int five, const unsigned char *block, const int8_t *x, size_t code_stride, const int16_t *s16, size_t s16_stride,
                      __m256i *sumi, __m256i *mins, int nt) {
    __m256i scale_pairs, min_pairs;
    k_scale_pairs(block, &scale_pairs, &min_pairs);
    for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i high = five ? _mm256_loadu_si256((const __m256i *)(block + 16)) : _mm256_setzero_si256();
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {
        __m256i lo, hi;
        k_runs(five, block, high, c, low4, &lo, &hi);
        const __m256i s_lo = _mm256_permutevar8x32_epi32(scale_pairs, _mm256_set1_epi32(2 * c));
        const __m256i s_hi = _mm256_permutevar8x32_epi32(scale_pairs, _mm256_set1_epi32(2 * c + 1));
        for (int t = 0; t < nt; t++) {
            const int8_t *xc = x + (size_t)t * code_stride + 64 * c;
            const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xc)), s_lo);
            const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xc + 32))), s_hi);
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p_lo, p_hi));
        }
    }
    for (int t = 0; t < nt; t++) mins[t] = _mm256_madd_epi16(min_pairs, _mm256_loadu_si256((const __m256i *)(s16 + (size_t)t * s16_stride)));
}

// Q6_K (210-byte super-blocks: ql[128], qh[64], int8 scales[16], d): the integer lanes of one super-block against tokens
// t < nt. Per run r of 32 values the 6-bit u (`q6_run`), `vpmaddubsw` with the codes, `vpmaddwd` with the run's two
// 16-value scales (int16 lanes 0..7 and 8..15); the offset −32 is applied once per super-block as 32·Σ scale_s·Σcodes_s.
K_INLINE void q6_block(const unsigned char *block, const int8_t *x, size_t code_stride, const int16_t *s16, size_t s16_stride,
                       __m256i *lanes, int nt) {
    const signed char *scale = (const signed char *)(block + 192);
    for (int t = 0; t < nt; t++) lanes[t] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++) {
        const __m256i u = q6_run(block, r);
        const __m256i s = _mm256_set_m128i(_mm_set1_epi16(scale[2 * r + 1]), _mm_set1_epi16(scale[2 * r]));
        for (int t = 0; t < nt; t++) {
            const __m256i xr = _mm256_loadu_si256((const __m256i *)(x + (size_t)t * code_stride + 32 * r));
            lanes[t] = _mm256_add_epi32(lanes[t], _mm256_madd_epi16(_mm256_maddubs_epi16(u, xr), s));
        }
    }
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scale));
    for (int t = 0; t < nt; t++) {
        const __m256i offset = _mm256_madd_epi16(scales16, _mm256_loadu_si256((const __m256i *)(s16 + (size_t)t * s16_stride)));
        lanes[t] = _mm256_sub_epi32(lanes[t], _mm256_slli_epi32(offset, 5));
    }
}

// Tokens t < nt (a constant where inlined) of one row: out[t·out_stride] = Σ over super-blocks as the file comment says.
// Token t's codes at codes + t·code_stride, its scales at d_x + t·blocks, its sums at sums + t·16·blocks.
K_INLINE void k_row(int format, const unsigned char *row, int blocks, const int8_t *codes, size_t code_stride, const float *d_x,
                    const int16_t *sums, float *out, int out_stride, int nt) {
    const size_t block_bytes = format == 2 ? 210 : format == 1 ? 176 : 144;
    __m128 acc[K_TILE_TOKENS];   // lane 0
    for (int t = 0; t < nt; t++) acc[t] = _mm_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        const unsigned char *block = row + (size_t)b * block_bytes;
        __m256i sumi[K_TILE_TOKENS], mins[K_TILE_TOKENS];
        const size_t s16_stride = (size_t)blocks * 16;
        if (format == 2) q6_block(block, codes + (size_t)b * 256, code_stride, sums + (size_t)b * 16, s16_stride, sumi, nt);
        else k_block(format, block, codes + (size_t)b * 256, code_stride, sums + (size_t)b * 16, s16_stride, sumi, mins, nt);
        const float d = half_at(block + (format == 2 ? 208 : 0)), dmin = format == 2 ? 0 : half_at(block + 2);
        for (int t = 0; t < nt; t++) {
            const float dx = d_x[(size_t)t * blocks + b];
            const __m128 sums2 = lane_sums2(sumi[t], format == 2 ? _mm256_setzero_si256() : mins[t]);
            acc[t] = format == 2 ? _mm_fmadd_ss(_mm_set_ss(d * dx), sums2, acc[t])   // q6_step
                                 : k_step(acc[t], d, dmin, dx, sums2);
        }
    }
    for (int t = 0; t < nt; t++) out[(size_t)t * out_stride] = _mm_cvtss_f32(acc[t]);
}

// `format`: 0 Q4_K, 1 Q5_K, 2 Q6_K (a constant where inlined).
K_INLINE void k_rows(int isa, int format, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int8_t *codes,
                     const float *d_x, const int16_t *sums, int ntok, float *out, int out_stride) {
    const unsigned char *base = (const unsigned char *)rows;
    const size_t code_stride = (size_t)blocks * 256;
#define K_TILE(r, t, nt) do { \
        const unsigned char *row_ = base + (size_t)(r) * row_bytes; \
        const int8_t *codes_ = codes + (size_t)(t) * code_stride; \
        const float *d_x_ = d_x + (size_t)(t) * blocks; \
        const int16_t *sums_ = sums + (size_t)(t) * blocks * 16; \
        float *out_ = out + (size_t)(t) * out_stride + (r); \
        k_row(format, row_, blocks, codes_, code_stride, d_x_, sums_, out_, out_stride, nt); \
    } while (0)
    // A chunk of 16 rows (in L1) against every tile of K_TILE_TOKENS tokens, then the leftover tokens (4, then 1–3) in
    // one pass over each row.
    if (ntok >= KG_MIN_TOKENS)
        row_begin = isa == KUJIRA_ISA_VNNI
            ? kujira_kg_rows_vnni(format, base, row_bytes, row_begin, row_end, blocks, codes, d_x, sums, ntok, out, out_stride)
            : kg_rows(format, base, row_bytes, row_begin, row_end, blocks, codes, d_x, sums, ntok, out, out_stride, 0);
    const int tiles = ntok / K_TILE_TOKENS;
    for (int first = row_begin; first < row_end; first += 16) {
        const int end = first + 16 < row_end ? first + 16 : row_end;
        for (int t = 0; t < K_TILE_TOKENS * tiles; t += K_TILE_TOKENS)
            for (int r = first; r < end; r++) K_TILE(r, t, K_TILE_TOKENS);
        int t = K_TILE_TOKENS * tiles, rest = ntok - t;
        if (K_TILE_TOKENS > 4 && rest >= 4) {
            for (int r = first; r < end; r++) K_TILE(r, t, 4);
            t += 4;
            rest -= 4;
        }
        if (rest == 3) { for (int r = first; r < end; r++) K_TILE(r, t, 3); }
        else if (rest == 2) { for (int r = first; r < end; r++) K_TILE(r, t, 2); }
        else if (rest == 1) { for (int r = first; r < end; r++) K_TILE(r, t, 1); }
    }
#undef K_TILE
}

K_AVX2 void kujira_k_q8k_dot_rows(int isa, int format, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                                  const int8_t *codes, const float *scales, const int16_t *sums, int ntok, float *out, int out_stride) {
    if (format == 2) k_rows(isa, 2, rows, row_bytes, row_begin, row_end, blocks, codes, scales, sums, ntok, out, out_stride);
    else if (format == 1) k_rows(isa, 1, rows, row_bytes, row_begin, row_end, blocks, codes, scales, sums, ntok, out, out_stride);
    else k_rows(isa, 0, rows, row_bytes, row_begin, row_end, blocks, codes, scales, sums, ntok, out, out_stride);
}

#else

void kujira_q8k_quantize(const float *x, long blocks, int8_t *codes, float *scales, int16_t *sums) {
    (void)x; (void)blocks; (void)codes; (void)scales; (void)sums;
}

void kujira_k_q8k_dot_rows(int isa, int format, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                           const int8_t *codes, const float *scales, const int16_t *sums, int ntok, float *out, int out_stride) {
    (void)isa; (void)format; (void)rows; (void)row_bytes; (void)row_begin; (void)row_end; (void)blocks; (void)codes; (void)scales; (void)sums; (void)ntok;
    (void)out; (void)out_stride;
}

#endif
