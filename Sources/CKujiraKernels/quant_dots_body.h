// The integer block dots, written once over the ops of `isa_ops.h` and compiled once per instruction set
// (quant_dots_vnni.c, quant_dots_avx2.c): see include/CKujiraKernels.h and docs/kernels.md, "vnni". Included only by those files.




// Block formats: 0 = Q8_0 (s8 weights), 1 = Q4_0, 2 = Q4_1 (nibbles, as s8 0..15), 3 = Q5_0, 4 = Q5_1 (nibbles or-ed
// with the fifth bits of qh, as s8 0..31). A compile-time constant in every always-inlined kernel below, so each
// format gets its own loop.
// 5 = IQ4_NL (18-byte blocks of 32: nibbles index the 16 non-linear levels), 6 = IQ4_XS (136-byte super-blocks of
// 256: run b & 7 of super-block b >> 3, nibbles at 8 + 16·run, scale d·(ls − 32) from its 6-bit ls). Both give the
// levels as s8 weights, like Q8_0, so they need no block-sum offset.
// 7 = IQ2_XXS (66-byte super-blocks: per run 4 grid indices + 4×7 sign bits + a 4-bit scale, d·(0.5 + s)·0.25),
// 8 = IQ1_S (50-byte super-blocks: 11-bit indices into the ternary grid, values 8·g ± 1, d·(2s + 1)·0.125). Their grid
// tables come from Swift (`IQTables`), so they live once.
// 9 = IQ3_XXS (98-byte super-blocks: per run 8 indices into the 4-value grid, then 4×7 sign bits + a 4-bit scale,
// d·(0.5 + s)·0.5).
// 10 = IQ3_S (110-byte super-blocks: per run 8 indices with a ninth bit from qh into the 512-row grid, 32 sign bits,
// a 4-bit scale per run, d·(1 + 2s)).
enum { Q8_0 = 0, Q4_0 = 1, Q4_1 = 2, Q5_0 = 3, Q5_1 = 4, IQ4_NL = 5, IQ4_XS = 6, IQ2_XXS = 7, IQ1_S = 8, IQ3_XXS = 9, IQ3_S = 10 };
static const int block_bytes[7] = {34, 18, 20, 22, 24, 18, 0};
struct iq_tables { const uint8_t *ksigns; const uint64_t *iq2xxs; const uint64_t *iq1s; const uint32_t *iq3xxs; const uint32_t *iq3s; };
#define HAS_MIN(format) ((format) == Q4_1 || (format) == Q5_1)
#define HAS_OFFSET(format) ((format) >= Q4_0 && (format) <= Q5_1)
static const signed char iq4_levels[32] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

// The 32 sign bits of a run of IQ2_XXS / IQ3_XXS: four 7-bit ksigns indices in the low 28 bits of `a`, one byte each.
static inline __attribute__((always_inline)) unsigned int ksigns_mask(const uint8_t *ksigns, unsigned int a) {
    return (unsigned int)ksigns[a & 127] | (unsigned int)ksigns[(a >> 7) & 127] << 8 | (unsigned int)ksigns[(a >> 14) & 127] << 16
        | (unsigned int)ksigns[(a >> 21) & 127] << 24;
}

// One block's weights (natural element order) permuted to the activation order, -128 * (sum of each lane's four
// weights), d_w in 8 lanes and the Q4_1 min: a token's exact lane sums are then one vpdpbusd starting from the
// bias ((q + 128)·w − 128·Σw = q·w). d_w comes from a broadcast half (vpbroadcastw + vcvtph2ps): `_cvtsh_ss`
// compiled to vpinsrw into a live accumulator register, a false dependency that chained every block to the
// previous block's last FMA (prefill 25% slower than the Swift kernels; measured).
K_TARGET static inline __attribute__((always_inline)) void load_block(int format, const unsigned char *row, int b, const struct iq_tables *tables, __m256i order,
                                                                       __m256i *w, __m256i *bias, __m256 *d, float *m) {
    __m256i natural;
    if (format == IQ2_XXS || format == IQ1_S || format == IQ3_XXS || format == IQ3_S) {
        const int run = b & 7;
        const unsigned char *block = row + (size_t)(b >> 3) * (format == IQ2_XXS ? 66 : format == IQ1_S ? 50 : format == IQ3_XXS ? 98 : 110);
        short h;
        __builtin_memcpy(&h, block, 2);
        __m256 scale;
        if (format == IQ2_XXS) {
            unsigned int a0, a1;
            __builtin_memcpy(&a0, block + 2 + 8 * run, 4);
            __builtin_memcpy(&a1, block + 6 + 8 * run, 4);
            natural = _mm256_set_epi64x((long long)tables->iq2xxs[(a0 >> 24) & 0xFF], (long long)tables->iq2xxs[(a0 >> 16) & 0xFF],
                                        (long long)tables->iq2xxs[(a0 >> 8) & 0xFF], (long long)tables->iq2xxs[a0 & 0xFF]);
            const unsigned int signs = ksigns_mask(tables->ksigns, a1);
            natural = k_negate_where(natural, signs);
            // (d · (0.5 + s)) · 0.25 with full-width conversions, as the Swift run's scale.
            scale = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(h)),
                                                _mm256_add_ps(_mm256_set1_ps(0.5f), _mm256_cvtepi32_ps(_mm256_set1_epi32((int)(a1 >> 28))))),
                                  _mm256_set1_ps(0.25f));
        } else if (format == IQ3_S) {
            const unsigned char *qs = block + 2 + 8 * run, qh = block[66 + run];
            const uint32_t *grid = tables->iq3s;
            natural = _mm256_set_epi32((int)grid[qs[7] | ((qh >> 7) & 1) << 8], (int)grid[qs[6] | ((qh >> 6) & 1) << 8],
                                       (int)grid[qs[5] | ((qh >> 5) & 1) << 8], (int)grid[qs[4] | ((qh >> 4) & 1) << 8],
                                       (int)grid[qs[3] | ((qh >> 3) & 1) << 8], (int)grid[qs[2] | ((qh >> 2) & 1) << 8],
                                       (int)grid[qs[1] | ((qh >> 1) & 1) << 8], (int)grid[qs[0] | (qh & 1) << 8]);
            unsigned int signs;
            __builtin_memcpy(&signs, block + 74 + 4 * run, 4);
            natural = k_negate_where(natural, signs);
            const int s4 = (block[106 + run / 2] >> (4 * (run & 1))) & 0x0F;
            scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(h)), _mm256_cvtepi32_ps(_mm256_set1_epi32(1 + 2 * s4)));
        } else if (format == IQ3_XXS) {
            unsigned int a;
            __builtin_memcpy(&a, block + 66 + 4 * run, 4);
            const unsigned char *qs = block + 2 + 8 * run;
            const uint32_t *grid = tables->iq3xxs;
            natural = _mm256_set_epi32((int)grid[qs[7]], (int)grid[qs[6]], (int)grid[qs[5]], (int)grid[qs[4]],
                                       (int)grid[qs[3]], (int)grid[qs[2]], (int)grid[qs[1]], (int)grid[qs[0]]);
            const unsigned int signs = ksigns_mask(tables->ksigns, a);
            natural = k_negate_where(natural, signs);
            scale = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(h)),
                                                _mm256_add_ps(_mm256_set1_ps(0.5f), _mm256_cvtepi32_ps(_mm256_set1_epi32((int)(a >> 28))))),
                                  _mm256_set1_ps(0.5f));
        } else {
            unsigned short qh;
            __builtin_memcpy(&qh, block + 34 + 2 * run, 2);
            const unsigned char *qs = block + 2 + 4 * run;
            __m256i g = _mm256_set_epi64x((long long)tables->iq1s[qs[3] | ((qh >> 9) & 7) << 8], (long long)tables->iq1s[qs[2] | ((qh >> 6) & 7) << 8],
                                          (long long)tables->iq1s[qs[1] | ((qh >> 3) & 7) << 8], (long long)tables->iq1s[qs[0] | (qh & 7) << 8]);
            g = _mm256_add_epi8(g, g); g = _mm256_add_epi8(g, g); g = _mm256_add_epi8(g, g);   // 8·g, exact in s8
            natural = _mm256_add_epi8(g, _mm256_set1_epi8((qh & 0x8000) ? -1 : 1));
            scale = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(h)), _mm256_cvtepi32_ps(_mm256_set1_epi32(2 * ((qh >> 12) & 7) + 1))),
                                  _mm256_set1_ps(0.125f));
        }
        *w = k_permute_bytes(order, natural);
        *bias = k_bias(*w);
        *d = scale;
        (void)m;
        return;
    }
    if (format == IQ4_NL || format == IQ4_XS) {
        const int run = b & 7;
        const unsigned char *block = format == IQ4_NL ? row + (size_t)b * 18 : row + (size_t)(b >> 3) * 136;
        __m128i packed = _mm_loadu_si128((const __m128i *)(block + (format == IQ4_NL ? 2 : 8 + 16 * run)));
        __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
        natural = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)iq4_levels), nibbles);
        *w = k_permute_bytes(order, natural);
        *bias = k_bias(*w);
        short h;
        __builtin_memcpy(&h, block, 2);
        if (format == IQ4_NL) {
            *d = _mm256_cvtph_ps(_mm_set1_epi16(h));
        } else {
            unsigned short high;
            __builtin_memcpy(&high, block + 2, 2);
            const int ls = ((block[4 + run / 2] >> (4 * (run & 1))) & 0x0F) | (((high >> (2 * run)) & 3) << 4);
            // Full-width conversions: a scalar vcvtsi2ss / vcvtph2ps merges into a live register (a false dependency
            // chaining the runs, as `load_block`'s note says for the halves).
            *d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(h)), _mm256_cvtepi32_ps(_mm256_set1_epi32(ls - 32)));
        }
        (void)m;
        return;
    }
    const unsigned char *block = row + (size_t)b * block_bytes[format];
    if (format == Q8_0) {
        *w = k_permute_bytes(order, _mm256_loadu_si256((const __m256i *)(block + 2)));
    } else {
        static const int nibble_offset[5] = {0, 2, 4, 6, 8};
        unsigned int qh = 0;  // bit i = fifth bit of value i (Q5_0 / Q5_1)
        if (format == Q5_0 || format == Q5_1) __builtin_memcpy(&qh, block + (format == Q5_1 ? 4 : 2), 4);
        *w = k_ordered_nibbles(order, block + nibble_offset[format], format == Q5_0 || format == Q5_1, qh);
    }
    *bias = k_bias(*w);
    short h;
    __builtin_memcpy(&h, block, 2);
    *d = _mm256_cvtph_ps(_mm_set1_epi16(h));
    if (HAS_MIN(format)) {
        __builtin_memcpy(&h, block + 2, 2);
        *m = _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(h)));
    }
}

// The tiling every `*_dot_rows` shares, as Linear.quantized does: a chunk of 16 rows (in L1) against every token quad,
// then the leftover tokens — 2 or 3 as one pass over each row (`QUAD(r, t, nt)`), a lone one by `SINGLE(r, t)`. Uses
// `row_begin`, `row_end` and `ntok` of the enclosing function.
#define K_ROW_TILES(QUAD, SINGLE) do { \
    const int quads_ = ntok / 4, rest_ = ntok - 4 * quads_; \
    for (int first = row_begin; first < row_end; first += 16) { \
        const int end = first + 16 < row_end ? first + 16 : row_end; \
        for (int t = 0; t < 4 * quads_; t += 4) \
            for (int r = first; r < end; r++) QUAD(r, t, 4); \
        const int t = 4 * quads_; \
        if (rest_ == 3) { for (int r = first; r < end; r++) QUAD(r, t, 3); } \
        else if (rest_ == 2) { for (int r = first; r < end; r++) QUAD(r, t, 2); } \
        else if (rest_ == 1) { for (int r = first; r < end; r++) SINGLE(r, t); } \
    } \
} while (0)

// One token's block term, as the Swift kernels: acc += Float(lanes) * splat(d_w * d_x) (one rounding each).
#define KUJIRA_TERM(acc, t) do { \
    const __m256i x = _mm256_loadu_si256((const __m256i *)(act + (size_t)(t) * act_stride + (size_t)b * 32)); \
    __m256i lanes = HAS_OFFSET(format) ? k_lanes_nibbles(bias, x, w) : k_lanes(bias, x, w); \
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_mul_ps(d, _mm256_set1_ps(act_scales[(size_t)(t) * blocks + b])), acc); \
} while (0)

// Q4_0 / Q5_0: treeSum(acc) − 8·Σ_b fma(d_w, d_x Σa) (16· for Q5_0); Q4_1 / Q5_1: treeSum(acc) + Σ_b fma(m_w, d_x Σa), as the
// Swift `dot`/`dot4`. `nt` tokens (2…4, a constant where inlined: the unused accumulators vanish); each token's sums are
// exactly `row_single`'s, so a speculative verify of 2 or 3 tokens decodes each weight block once for all of them.
K_TARGET static inline __attribute__((always_inline)) void row_quad(int format, const struct iq_tables *tables, const unsigned char *row, int blocks, const uint8_t *act,
                                                                     size_t act_stride, const float *act_scales, const float *act_sums,
                                                                     float *out, int out_stride, int nt) {
    const __m256i order = _mm256_loadu_si256((const __m256i *)block_order);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m128 offset = _mm_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m256i w, bias;
        __m256 d;
        float m = 0;
        load_block(format, row, b, tables, order, &w, &bias, &d, &m);
        KUJIRA_TERM(a0, 0);
        KUJIRA_TERM(a1, 1);
        if (nt > 2) KUJIRA_TERM(a2, 2);
        if (nt > 3) KUJIRA_TERM(a3, 3);
        if (HAS_OFFSET(format)) {
            __m128 sums = _mm_set_ps(nt > 3 ? act_sums[3 * (size_t)blocks + b] : 0, nt > 2 ? act_sums[2 * (size_t)blocks + b] : 0,
                                     act_sums[(size_t)blocks + b], act_sums[b]);
            offset = _mm_fmadd_ps(HAS_MIN(format) ? _mm_set1_ps(m) : _mm256_castps256_ps128(d), sums, offset);
        }
    }
    __m128 total = _mm_set_ps(tree_sum(a3), tree_sum(a2), tree_sum(a1), tree_sum(a0));
    if (format == Q4_0) total = _mm_sub_ps(total, _mm_mul_ps(_mm_set1_ps(8), offset));
    if (format == Q5_0) total = _mm_sub_ps(total, _mm_mul_ps(_mm_set1_ps(16), offset));
    if (HAS_MIN(format)) total = _mm_add_ps(total, offset);
    float four[4];
    _mm_storeu_ps(four, total);
    for (int k = 0; k < nt; k++) out[k * out_stride] = four[k];
}

K_TARGET static inline __attribute__((always_inline)) float row_single(int format, const struct iq_tables *tables, const unsigned char *row, int blocks, const uint8_t *act,
                                                                        const float *act_scales, const float *act_sums) {
    const __m256i order = _mm256_loadu_si256((const __m256i *)block_order);
    const size_t act_stride = 0;
    __m256 a0 = _mm256_setzero_ps();
    float offset = 0;
    for (int b = 0; b < blocks; b++) {
        __m256i w, bias;
        __m256 d;
        float m = 0;
        load_block(format, row, b, tables, order, &w, &bias, &d, &m);
        KUJIRA_TERM(a0, 0);
        if (HAS_OFFSET(format)) offset = __builtin_fmaf(HAS_MIN(format) ? m : _mm256_cvtss_f32(d), act_sums[b], offset);
    }
    (void)act_stride;
    float total = tree_sum(a0);
    if (format == Q4_0) total -= 8 * offset;
    if (format == Q5_0) total -= 16 * offset;
    if (HAS_MIN(format)) total += offset;
    return total;
}

#include "transpose8.h"
#include "quant_dots_gemm8.h"

K_TARGET static inline __attribute__((always_inline)) void dot_rows(int format, const struct iq_tables *tables, const void *rows, size_t row_bytes, int row_begin, int row_end,
                                                                     int blocks, const uint8_t *act, const float *act_scales, const float *act_sums,
                                                                     int ntok, float *out, int out_stride) {
    const unsigned char *base = (const unsigned char *)rows;
    const size_t act_stride = (size_t)blocks * 32;
    if (ntok >= GEMM8_MIN_TOKENS) row_begin = gemm8_rows(format, tables, base, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
#define QUAD(r, t, nt) row_quad(format, tables, base + (size_t)(r) * row_bytes, blocks, act + (size_t)(t) * act_stride, act_stride, \
                                act_scales + (size_t)(t) * blocks, act_sums + (size_t)(t) * blocks, out + (size_t)(t) * out_stride + (r), out_stride, nt)
#define SINGLE(r, t) out[(size_t)(t) * out_stride + (r)] = row_single(format, tables, base + (size_t)(r) * row_bytes, blocks, \
                                act + (size_t)(t) * act_stride, act_scales + (size_t)(t) * blocks, act_sums + (size_t)(t) * blocks)
    K_ROW_TILES(QUAD, SINGLE);
#undef QUAD
#undef SINGLE
}

K_TARGET void K_NAME(kujira_q8_0_dot_rows)(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                                      const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride) {
    dot_rows(Q8_0, 0, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_scales, ntok, out, out_stride);
}

K_TARGET void K_NAME(kujira_iq4_dot_rows)(int xs, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs,
                                     const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride) {
    if (xs) dot_rows(IQ4_XS, 0, rows, row_bytes, row_begin, row_end, runs, act, act_scales, act_scales, ntok, out, out_stride);
    else dot_rows(IQ4_NL, 0, rows, row_bytes, row_begin, row_end, runs, act, act_scales, act_scales, ntok, out, out_stride);
}

K_TARGET void K_NAME(kujira_iq_grid_dot_rows)(int kind, const uint8_t *ksigns, const uint64_t *iq2xxs, const uint64_t *iq1s, const uint32_t *iq3xxs,
                                         const uint32_t *iq3s, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act,
                                         const float *act_scales, int ntok, float *out, int out_stride) {
    const struct iq_tables tables = {ksigns, iq2xxs, iq1s, iq3xxs, iq3s};
    if (kind == 1) dot_rows(IQ1_S, &tables, rows, row_bytes, row_begin, row_end, runs, act, act_scales, act_scales, ntok, out, out_stride);
    else if (kind == 3) dot_rows(IQ3_S, &tables, rows, row_bytes, row_begin, row_end, runs, act, act_scales, act_scales, ntok, out, out_stride);
    else if (kind == 2) dot_rows(IQ3_XXS, &tables, rows, row_bytes, row_begin, row_end, runs, act, act_scales, act_scales, ntok, out, out_stride);
    else dot_rows(IQ2_XXS, &tables, rows, row_bytes, row_begin, row_end, runs, act, act_scales, act_scales, ntok, out, out_stride);
}

K_TARGET void K_NAME(kujira_q4_dot_rows)(int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                                    const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride) {
    if (has_min) dot_rows(Q4_1, 0, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
    else dot_rows(Q4_0, 0, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
}

K_TARGET void K_NAME(kujira_q5_dot_rows)(int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                                    const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride) {
    if (has_min) dot_rows(Q5_1, 0, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
    else dot_rows(Q5_0, 0, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
}
