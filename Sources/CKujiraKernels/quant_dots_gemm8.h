// Prompt-sized batches of the 32-value block dots (quant_dots_body.h's `dot_rows`, for `GEMM8_MIN_TOKENS` tokens or more):
// eight rows at a time, their blocks repacked once per call so that one register holds int32 lane j of all eight rows.
// Included only by quant_dots_body.h, after `load_block`.
//
// The arithmetic is `row_quad`'s, lane for lane: per row and token, eight float lanes each accumulate
// fma(float(lane sum), d_w·d_x, acc) over the blocks in order, then `tree_sum`; the offsets of Q4_0/Q4_1/Q5_0/Q5_1 are the
// same fma chain. Only the layout changes: register j of a group holds lane j of rows r..r+7 (an 8×8 transpose of their
// permuted blocks, done once per call into `scratch`), so the scale product d_w·d_x is one multiply for eight rows, the
// tree sum is seven vertical adds for eight rows, and a token's four activation bytes of lane j are one broadcast.
// The bits are those of the per-row kernels (CBlockDotTests compares with the Swift kernels at 8, 13 and 33 tokens).
// docs/kernels.md, "Eight rows per register".

// The smallest token count that takes this path: below it, repacking costs more than it saves (bench-kernels).
#define GEMM8_MIN_TOKENS 8
// Blocks per pass over the tokens.
#define GEMM8_CHUNK 16

// Formats whose weights are signed (the sign moves onto the activations, as `k_lanes` on AVX2); the nibble formats are
// 0..31 and multiply unsigned (`k_lanes_nibbles`).
#define GEMM8_SIGNED(format) (!HAS_OFFSET(format))

// Bytes of one block of a group in the scratch: lane registers (|w| for signed formats, w for nibbles), the signed
// formats' w again (the sign source), the eight rows' d and m.
#define GEMM8_BLOCK_BYTES (256 + 256 + 32 + 32)

// Rows r0..r0+7, every block, into `scratch` (GEMM8_BLOCK_BYTES per block): each row's block permuted to the activation
// order by `load_block`, then transposed so that register j holds lane j of the eight rows.
K_INLINE void gemm8_repack(int format, const struct iq_tables *tables, const unsigned char *base, size_t row_bytes, int r0, int blocks,
                           unsigned char *scratch) {
    const __m256i order = _mm256_loadu_si256((const __m256i *)block_order);
    for (int b = 0; b < blocks; b++) {
        unsigned char *out = scratch + (size_t)b * GEMM8_BLOCK_BYTES;
        __m256i w[8], lanes[8];
        float d[8], m[8];
        for (int i = 0; i < 8; i++) {
            __m256i bias;
            __m256 dv;
            m[i] = 0;
            load_block(format, base + (size_t)(r0 + i) * row_bytes, b, tables, order, &w[i], &bias, &dv, &m[i]);
            d[i] = _mm256_cvtss_f32(dv);
        }
        transpose8x8_epi32(w, lanes);
        for (int j = 0; j < 8; j++) {
            _mm256_storeu_si256((__m256i *)(out + 32 * j), GEMM8_SIGNED(format) ? _mm256_abs_epi8(lanes[j]) : lanes[j]);
            if (GEMM8_SIGNED(format)) _mm256_storeu_si256((__m256i *)(out + 256 + 32 * j), lanes[j]);
        }
        _mm256_storeu_ps((float *)(out + 512), _mm256_loadu_ps(d));
        _mm256_storeu_ps((float *)(out + 544), _mm256_loadu_ps(m));
    }
}

// Lane j of the group's block against the four activation bytes of lane j (q as s8, broadcast): the exact int32 lane sums
// of the eight rows, as `k_lanes` (signed weights) or `k_lanes_nibbles` computes them for one row.
#define GEMM8_LANES(j) do { \
    const __m256i q = _mm256_set1_epi32(*(const int *)(x + 4 * (j))); \
    const __m256i u = _mm256_loadu_si256((const __m256i *)(block + 32 * (j))); \
    const __m256i pairs = GEMM8_SIGNED(format) \
        ? _mm256_maddubs_epi16(u, _mm256_sign_epi8(q, _mm256_loadu_si256((const __m256i *)(block + 256 + 32 * (j))))) \
        : _mm256_maddubs_epi16(u, q); \
    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1))), scale, acc[j]); \
} while (0)

// Blocks [b0, b1) of the repacked group against one token, continuing the accumulators in `state` (eight lane registers,
// then the offset): the chain of fma's is the per-row kernels' whatever the split, only spilled between chunks.
K_INLINE void gemm8_chunk(int format, const unsigned char *scratch, int b0, int b1, const int8_t *act, const float *act_scales,
                          const float *act_sums, __m256 *state) {
    __m256 acc[8];
    for (int j = 0; j < 8; j++) acc[j] = state[j];
    __m256 offset = state[8];
    for (int b = b0; b < b1; b++) {
        const unsigned char *block = scratch + (size_t)b * GEMM8_BLOCK_BYTES;
        const int8_t *x = act + (size_t)b * 32;
        const __m256 d = _mm256_loadu_ps((const float *)(block + 512));
        const __m256 scale = _mm256_mul_ps(d, _mm256_set1_ps(act_scales[b]));
        GEMM8_LANES(0); GEMM8_LANES(1); GEMM8_LANES(2); GEMM8_LANES(3);
        GEMM8_LANES(4); GEMM8_LANES(5); GEMM8_LANES(6); GEMM8_LANES(7);
        if (HAS_OFFSET(format)) {
            const __m256 factor = HAS_MIN(format) ? _mm256_loadu_ps((const float *)(block + 544)) : d;
            offset = _mm256_fmadd_ps(factor, _mm256_set1_ps(act_sums[b]), offset);
        }
    }
    for (int j = 0; j < 8; j++) state[j] = acc[j];
    state[8] = offset;
}

// The eight rows' results from finished accumulators: `row_single`'s tree_sum per row, vertically (lanes i + i+4, then
// 0 + 2 and 1 + 3, then the two), and its offset term.
K_INLINE void gemm8_finish(int format, const __m256 *state, float *out) {
    const __m256 h0 = _mm256_add_ps(state[0], state[4]), h1 = _mm256_add_ps(state[1], state[5]);
    const __m256 h2 = _mm256_add_ps(state[2], state[6]), h3 = _mm256_add_ps(state[3], state[7]);
    __m256 total = _mm256_add_ps(_mm256_add_ps(h0, h2), _mm256_add_ps(h1, h3));
    if (format == Q4_0) total = _mm256_sub_ps(total, _mm256_mul_ps(_mm256_set1_ps(8), state[8]));
    if (format == Q5_0) total = _mm256_sub_ps(total, _mm256_mul_ps(_mm256_set1_ps(16), state[8]));
    if (HAS_MIN(format)) total = _mm256_add_ps(total, state[8]);
    _mm256_storeu_ps(out, total);
}
#undef GEMM8_LANES

// Rows [row_begin, row_end) rounded down to groups of eight, against all `ntok` tokens; returns the first row not done
// (the caller's per-row kernels take the rest), or row_begin when the scratch cannot be allocated. The scratch is the
// thread's (`kujira_thread_scratch`): calls reuse it instead of a fresh allocation (for prompt-sized calls an mmap, its
// page faults and an munmap each time).
K_INLINE int gemm8_rows(int format, const struct iq_tables *tables, const unsigned char *base, size_t row_bytes, int row_begin, int row_end,
                        int blocks, const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride) {
    const int groups = (row_end - row_begin) / 8;
    if (groups == 0) return row_begin;
    // The repacked group, nine accumulator registers per token, then the activations as s8 (q = (q + 128) ^ 0x80, once
    // per call instead of once per group and lane).
    const size_t act_stride = (size_t)blocks * 32, packed = (size_t)blocks * GEMM8_BLOCK_BYTES, states_bytes = (size_t)ntok * 9 * sizeof(__m256);
    unsigned char *scratch = kujira_thread_scratch(packed + states_bytes + (size_t)ntok * act_stride);
    if (!scratch) return row_begin;
    __m256 *states = (__m256 *)(scratch + packed);
    int8_t *signed_act = (int8_t *)(scratch + packed + states_bytes);
    for (size_t i = 0; i < (size_t)ntok * act_stride; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(act + i));
        _mm256_storeu_si256((__m256i *)(signed_act + i), _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
    }
    for (int g = 0; g < groups; g++) {
        const int r0 = row_begin + 8 * g;
        gemm8_repack(format, tables, base, row_bytes, r0, blocks, scratch);
        for (size_t i = 0; i < (size_t)ntok * 9; i++) states[i] = _mm256_setzero_ps();
        // GEMM8_CHUNK blocks of the group (9 KiB) stay in L1 while every token passes over them.
        for (int b0 = 0; b0 < blocks; b0 += GEMM8_CHUNK) {
            const int b1 = b0 + GEMM8_CHUNK < blocks ? b0 + GEMM8_CHUNK : blocks;
            for (int t = 0; t < ntok; t++) {
                gemm8_chunk(format, scratch, b0, b1, signed_act + (size_t)t * act_stride, act_scales + (size_t)t * blocks, act_sums + (size_t)t * blocks,
                            states + (size_t)t * 9);
            }
        }
        for (int t = 0; t < ntok; t++) gemm8_finish(format, states + (size_t)t * 9, out + (size_t)t * out_stride + r0);
    }
    return row_begin + 8 * groups;
}
