// Prompt-sized batches of Q4_K / Q5_K / Q6_K rows on Q8_K activations (kquant_q8k.c's `k_rows`, for `KG_MIN_TOKENS`
// tokens or more): eight rows at a time, their super-blocks repacked once per call so that int32 lane i of a register
// belongs to row r0 + i. Included after kquant_unpack.h.
//
// A register of the repacked group holds four values of each of the eight rows (values 4g..4g+3 of run k), as bytes.
// Against a token's four codes of that place (one broadcast) `vpmaddubsw` gives each row's two pair sums; the pair sums
// of several places are added as int16 before one `vpmaddwd` with the eight rows' scales (`KG_PART`: Q4_K eight places,
// |sum| ≤ 8·2·15·127 = 30480; Q5_K four, ≤ 4·2·31·127 = 31496; Q6_K two, ≤ 2·2·63·127 = 32004; no saturation). So a run of
// 32 values costs eight byte multiplies and one (Q5_K two, Q6_K four) word multiplies for eight rows, where the per-row
// kernel needs eight of each. The min term (Q4_K/Q5_K: pairs of mins against pairs of run sums) or Q6_K's −32 offset
// (pairs of scales against pairs of 16-code sums) is four or eight `vpmaddwd` for eight rows. Each row's super-block sums
// are exact integers, and lane i then does the per-row kernels' float operations (`k_step`, or Q6_K's one FMA): the same
// bits as they and the Swift reference give (CBlockDotTests, KQuantQ8KTests). docs/kernels.md, "K-quants on Q8_K".
// Built twice: in kquant_q8k.c (AVX2) and in kquant_gemm8_vnni.c (KG_VNNI: the run loop on `vpdpbusd`, `kg_runs_vnni`).

// The smallest token count that takes this path (bench-kernels 2048x2048: at 4 tokens the repack costs what it saves, at 6
// it is 7–20% faster than the per-row tiles).
#define KG_MIN_TOKENS 6
// Super-blocks per pass over the tokens (11 KiB of repacked rows, in L1).
#define KG_CHUNK 4
// Tokens per register tile.
#define KG_TILE 4

// Places (registers of four values per row) whose pair sums are added as int16 before the scale: see above.
#define KG_PART(format) ((format) == 0 ? 8 : (format) == 1 ? 4 : 2)

// One super-block of a group in the scratch: 64 value registers ([run k][place g], 8 rows × 4 bytes each); 16 scale
// registers, one per 16 values (lane i: s | s << 16 of row i; Q4_K / Q5_K store each run's scale twice); 8 pair registers
// (lane i: Q4_K / Q5_K m_2p | m_2p+1 << 16 for p < 4, Q6_K s_2p | s_2p+1 << 16); d and dmin of the 8 rows.
#define KG_VALUES 0
#define KG_SCALES 2048
#define KG_PAIRS (KG_SCALES + 512)
#define KG_D (KG_PAIRS + 256)
#define KG_DMIN (KG_D + 32)
#define KG_BLOCK_BYTES (KG_DMIN + 32)

// An int32 lane holding `low` in its low int16 and `high` in its high int16 (the operand layout of `vpmaddwd`).
K_INLINE int32_t int16_pair(int32_t low, int32_t high) { return (low & 0xFFFF) | (int32_t)((uint32_t)high << 16); }

// Rows r0..r0+7, every super-block, into `scratch` (KG_BLOCK_BYTES per super-block). With `width` 2 the layout is that of
// two groups side by side (the VNNI build's sixteen rows per zmm register): each 32-byte unit of the layout above is
// followed by the other group's, and this group's units go first (`half` 0) or second (`half` 1).
K_INLINE void kg_repack_into(int format, const unsigned char *base, size_t row_bytes, int r0, int blocks, unsigned char *scratch,
                             int width, int half) {
#define KG_UNIT(out, offset) ((out) + (size_t)width * (offset) + 32 * half)
    const size_t block_bytes = format == 2 ? 210 : format == 1 ? 176 : 144;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int b = 0; b < blocks; b++) {
        unsigned char *out = scratch + (size_t)b * width * KG_BLOCK_BYTES;
        __m256i runs[8][8];   // [run][row]
        int32_t scales[8][16], pairs[8][8];
        float d[8], dmin[8];
        for (int i = 0; i < 8; i++) {
            const unsigned char *block = base + (size_t)(r0 + i) * row_bytes + (size_t)b * block_bytes;
            if (format == 2) {
                for (int r = 0; r < 8; r++) runs[r][i] = q6_run(block, r);
                for (int q = 0; q < 16; q++) {
                    const int v = ((const signed char *)block)[192 + q];
                    scales[i][q] = int16_pair(v, v);
                }
                for (int p = 0; p < 8; p++) pairs[i][p] = int16_pair(scales[i][2 * p], scales[i][2 * p + 1]);
                d[i] = half_at(block + 208);
                dmin[i] = 0;
                continue;
            }
            __m256i scale_pairs, min_pairs;
            int32_t s[8], m[8];
            k_scale_pairs(block, &scale_pairs, &min_pairs);
            _mm256_storeu_si256((__m256i *)s, scale_pairs);
            _mm256_storeu_si256((__m256i *)m, min_pairs);
            for (int k = 0; k < 8; k++) scales[i][2 * k] = scales[i][2 * k + 1] = s[k];
            for (int p = 0; p < 8; p++) pairs[i][p] = p < 4 ? int16_pair(m[2 * p], m[2 * p + 1]) : 0;
            d[i] = half_at(block);
            dmin[i] = half_at(block + 2);
            const __m256i high = format == 1 ? _mm256_loadu_si256((const __m256i *)(block + 16)) : _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) k_runs(format == 1, block, high, c, low4, &runs[2 * c][i], &runs[2 * c + 1][i]);
        }
        for (int k = 0; k < 8; k++) {
            __m256i places[8];
            transpose8x8_epi32(runs[k], places);
            for (int g = 0; g < 8; g++) _mm256_storeu_si256((__m256i *)KG_UNIT(out, KG_VALUES + 32 * (8 * k + g)), places[g]);
        }
        for (int q = 0; q < 16; q++) {
            int32_t *scale_out = (int32_t *)KG_UNIT(out, KG_SCALES + 32 * q);
            for (int i = 0; i < 8; i++) scale_out[i] = scales[i][q];
        }
        for (int p = 0; p < 8; p++) {
            int32_t *pair_out = (int32_t *)KG_UNIT(out, KG_PAIRS + 32 * p);
            for (int i = 0; i < 8; i++) pair_out[i] = pairs[i][p];
        }
        _mm256_storeu_ps((float *)KG_UNIT(out, KG_D), _mm256_loadu_ps(d));
        _mm256_storeu_ps((float *)KG_UNIT(out, KG_DMIN), _mm256_loadu_ps(dmin));
    }
#undef KG_UNIT
}

// Place g of run k of a repacked super-block: four values of each of the eight rows, as bytes.
K_INLINE __m256i kg_place(const unsigned char *block, int k, int g) {
    return _mm256_loadu_si256((const __m256i *)(block + KG_VALUES + 32 * (8 * k + g)));
}

// Token t's four codes of that place in super-block b, as one int32.
K_INLINE int kg_code_word(const int8_t *codes, size_t code_stride, int t, int b, int k, int g) {
    int four;
    __builtin_memcpy(&four, codes + (size_t)t * code_stride + (size_t)b * 256 + 32 * k + 4 * g, 4);
    return four;
}

// The same, broadcast to every lane.
K_INLINE __m256i kg_codes(const int8_t *codes, size_t code_stride, int t, int b, int k, int g) {
    return _mm256_set1_epi32(kg_code_word(codes, code_stride, t, b, k, g));
}

#if defined(KG_VNNI)
// The eight runs of super-block b of the repacked group against tokens t < nt, into the rows' exact int32 sums `sum` (AVX-512
// VNNI, kquant_gemm8_vnni.c). `vpdpbusd` adds a place's four byte products straight into int32 lanes, so there is no int16
// bound: each 16-value half of a run (Q4_K / Q5_K: two halves with one scale, summed first) is one int32 per row, times
// its scale with one `vpmulld` (|half| ≤ 16·63·127, times |scale| ≤ 127: far inside int32). Per run and token: eight
// `vpdpbusd` and one or two `vpmulld`, where the AVX2 tile pays eight `vpmaddubsw`, seven `vpaddw` and one to four
// `vpmaddwd`. The same integers as the AVX2 tile, hence the same bits.
K_INLINE void kg_runs_vnni(int format, const unsigned char *block, const int8_t *codes, size_t code_stride, int b, __m256i *sum, int nt) {
#pragma clang loop unroll(disable)
    for (int k = 0; k < 8; k++) {
        __m256i half[KG_TILE][2];
        for (int t = 0; t < nt; t++) half[t][0] = half[t][1] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
        for (int g = 0; g < 8; g++) {
            const __m256i w = kg_place(block, k, g);
            for (int t = 0; t < nt; t++) half[t][g / 4] = _mm256_dpbusd_epi32(half[t][g / 4], w, kg_codes(codes, code_stride, t, b, k, g));
        }
        // Each scale register holds s in both int16 halves of a lane; the arithmetic shift leaves s as int32.
        const __m256i s0 = _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(block + KG_SCALES + 32 * (2 * k))), 16);
        if (format == 2) {
            const __m256i s1 = _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(block + KG_SCALES + 32 * (2 * k + 1))), 16);
            for (int t = 0; t < nt; t++)
                sum[t] = _mm256_add_epi32(sum[t], _mm256_add_epi32(_mm256_mullo_epi32(half[t][0], s0), _mm256_mullo_epi32(half[t][1], s1)));
        } else {
            for (int t = 0; t < nt; t++) sum[t] = _mm256_add_epi32(sum[t], _mm256_mullo_epi32(_mm256_add_epi32(half[t][0], half[t][1]), s0));
        }
    }
}
#endif

// Super-blocks [b0, b1) of the repacked group against tokens t < nt (a constant where inlined), continuing their
// accumulators (eight rows' floats per token, at state + 8·t) in `state`. Token t's codes at codes + t·code_stride, its scales at
// d_x + t·blocks, its 16-code sums at sums + t·16·blocks, its run sums (eight per super-block) at run_sums + t·8·blocks.
K_INLINE void kg_tile(int format, const unsigned char *scratch, int b0, int b1, int blocks, const int8_t *codes, size_t code_stride,
                      const float *d_x, const int16_t *sums, const int16_t *run_sums, float *state, int nt) {
    __m256 acc[KG_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_loadu_ps(state + 8 * t);
    for (int b = b0; b < b1; b++) {
        const unsigned char *block = scratch + (size_t)b * KG_BLOCK_BYTES;
        __m256i sum[KG_TILE];
        for (int t = 0; t < nt; t++) sum[t] = _mm256_setzero_si256();
#if defined(KG_VNNI)
        kg_runs_vnni(format, block, codes, code_stride, b, sum, nt);
#else
        const int part = KG_PART(format);
        // Not unrolled: with all 256 multiplies in one block clang reorders them token-major, spilling every weight
        // register to the stack for the first token and reloading it for the others (no faster than the per-row kernel).
#pragma clang loop unroll(disable)
        for (int k = 0; k < 8; k++) {
            __m256i partial[KG_TILE];
#pragma clang loop unroll(full)
            for (int g = 0; g < 8; g++) {
                const __m256i w = kg_place(block, k, g);
                for (int t = 0; t < nt; t++) {
                    const __m256i pair_sums = _mm256_maddubs_epi16(w, kg_codes(codes, code_stride, t, b, k, g));
                    partial[t] = g % part == 0 ? pair_sums : _mm256_add_epi16(partial[t], pair_sums);
                }
                if (g % part == part - 1) {   // a finished part: scale it into the int32 sums (scale of values 16·(g / 4) of run k)
                    const __m256i scale = _mm256_loadu_si256((const __m256i *)(block + KG_SCALES + 32 * (2 * k + g / 4)));
                    for (int t = 0; t < nt; t++) sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(partial[t], scale));
                }
            }
        }
#endif
        const __m256 d = _mm256_loadu_ps((const float *)(block + KG_D));
        for (int t = 0; t < nt; t++) {
            const __m256 dx = _mm256_set1_ps(d_x[(size_t)t * blocks + b]);
            __m256i extra = _mm256_setzero_si256();
            const int16_t *pair_source = format == 2 ? sums + ((size_t)t * blocks + b) * 16 : run_sums + ((size_t)t * blocks + b) * 8;
            for (int p = 0; p < (format == 2 ? 8 : 4); p++) {
                int pair;
                __builtin_memcpy(&pair, pair_source + 2 * p, 4);
                const __m256i weights = _mm256_loadu_si256((const __m256i *)(block + KG_PAIRS + 32 * p));
                extra = _mm256_add_epi32(extra, _mm256_madd_epi16(weights, _mm256_set1_epi32(pair)));
            }
            if (format == 2) {   // q6_step: fma(d·dx, sum − 32·offset, acc)
                const __m256i lanes = _mm256_sub_epi32(sum[t], _mm256_slli_epi32(extra, 5));
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(lanes), acc[t]);
            } else {             // k_step: fma(d·dx, sum, acc), then fma(−(dmin·dx), mins, acc)
                const __m256 dmin = _mm256_loadu_ps((const float *)(block + KG_DMIN));
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sum[t]), acc[t]);
                const __m256 neg = _mm256_xor_ps(_mm256_mul_ps(dmin, dx), _mm256_set1_ps(-0.0f));
                acc[t] = _mm256_fmadd_ps(neg, _mm256_cvtepi32_ps(extra), acc[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(state + 8 * t, acc[t]);
}

#if defined(KG_VNNI)
// Sixteen rows per zmm register (the VNNI build): two groups of eight repacked side by side (`kg_repack_into` width 2), so
// int32 lane i < 8 of a 64-byte unit belongs to row r0 + i and lane 8 + i to row r0 + 8 + i. The same steps as
// `kg_runs_vnni` and `kg_tile`, lane by lane, on twice the rows per instruction: the same integers and float operations
// per row, hence the same bits.
K_INLINE __m512 kg_negate16(__m512 v) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000))); }

K_INLINE void kg_tile16(int format, const unsigned char *scratch, int b0, int b1, int blocks, const int8_t *codes, size_t code_stride,
                        const float *d_x, const int16_t *sums, const int16_t *run_sums, float *state, int nt) {
    __m512 acc[KG_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_loadu_ps(state + 16 * t);   // the scratch is only 32-byte aligned
    for (int b = b0; b < b1; b++) {
        const unsigned char *block = scratch + (size_t)b * 2 * KG_BLOCK_BYTES;
        __m512i sum[KG_TILE];
        for (int t = 0; t < nt; t++) sum[t] = _mm512_setzero_si512();
#pragma clang loop unroll(disable)
        for (int k = 0; k < 8; k++) {
            __m512i half[KG_TILE][2];
            for (int t = 0; t < nt; t++) half[t][0] = half[t][1] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
            for (int g = 0; g < 8; g++) {
                const __m512i w = _mm512_loadu_si512((const void *)(block + 2 * (KG_VALUES + 32 * (8 * k + g))));
                for (int t = 0; t < nt; t++)
                    half[t][g / 4] = _mm512_dpbusd_epi32(half[t][g / 4], w, _mm512_set1_epi32(kg_code_word(codes, code_stride, t, b, k, g)));
            }
            const __m512i s0 = _mm512_srai_epi32(_mm512_loadu_si512((const void *)(block + 2 * (KG_SCALES + 32 * (2 * k)))), 16);
            if (format == 2) {
                const __m512i s1 = _mm512_srai_epi32(_mm512_loadu_si512((const void *)(block + 2 * (KG_SCALES + 32 * (2 * k + 1)))), 16);
                for (int t = 0; t < nt; t++)
                    sum[t] = _mm512_add_epi32(sum[t], _mm512_add_epi32(_mm512_mullo_epi32(half[t][0], s0), _mm512_mullo_epi32(half[t][1], s1)));
            } else {
                for (int t = 0; t < nt; t++) sum[t] = _mm512_add_epi32(sum[t], _mm512_mullo_epi32(_mm512_add_epi32(half[t][0], half[t][1]), s0));
            }
        }
        const __m512 d = _mm512_loadu_ps((const float *)(block + 2 * KG_D));
        for (int t = 0; t < nt; t++) {
            const __m512 dx = _mm512_set1_ps(d_x[(size_t)t * blocks + b]);
            __m512i extra = _mm512_setzero_si512();
            const int16_t *pair_source = format == 2 ? sums + ((size_t)t * blocks + b) * 16 : run_sums + ((size_t)t * blocks + b) * 8;
            for (int p = 0; p < (format == 2 ? 8 : 4); p++) {
                int pair;
                __builtin_memcpy(&pair, pair_source + 2 * p, 4);
                const __m512i weights = _mm512_loadu_si512((const void *)(block + 2 * (KG_PAIRS + 32 * p)));
                extra = _mm512_add_epi32(extra, _mm512_madd_epi16(weights, _mm512_set1_epi32(pair)));
            }
            if (format == 2) {   // q6_step
                const __m512i lanes = _mm512_sub_epi32(sum[t], _mm512_slli_epi32(extra, 5));
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(lanes), acc[t]);
            } else {             // k_step
                const __m512 dmin = _mm512_loadu_ps((const float *)(block + 2 * KG_DMIN));
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(sum[t]), acc[t]);
                acc[t] = _mm512_fmadd_ps(kg_negate16(_mm512_mul_ps(dmin, dx)), _mm512_cvtepi32_ps(extra), acc[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(state + 16 * t, acc[t]);
}
#endif

// Rows [row_begin, row_end) in groups of eight against all `ntok` tokens — with `wide` (the VNNI build) sixteen per zmm
// register while sixteen rows are left — and returns the first row not done (the per-row kernel takes the rest), or
// row_begin when the scratch cannot be allocated. The scratch is the thread's (`kujira_thread_scratch`): the repacked
// group, each token's accumulators (8 or 16 floats), then every token's run sums (Σ of its two 16-code sums).
K_INLINE int kg_rows(int format, const unsigned char *base, size_t row_bytes, int row_begin, int row_end, int blocks, const int8_t *codes,
                     const float *d_x, const int16_t *sums, int ntok, float *out, int out_stride, int wide) {
    if (row_end - row_begin < 8) return row_begin;
    const int widest = wide ? 2 : 1;
    const size_t packed = (size_t)blocks * widest * KG_BLOCK_BYTES, states_bytes = (size_t)ntok * 8 * widest * sizeof(float);
    unsigned char *scratch = kujira_thread_scratch(packed + states_bytes + (size_t)ntok * blocks * 8 * sizeof(int16_t));
    if (!scratch) return row_begin;
    float *states = (float *)(scratch + packed);
    int16_t *run_sums = (int16_t *)(scratch + packed + states_bytes);
    for (size_t i = 0; i < (size_t)ntok * blocks * 8; i++) run_sums[i] = (int16_t)(sums[2 * i] + sums[2 * i + 1]);   // |·| ≤ 32·127
    const size_t code_stride = (size_t)blocks * 256;
    int r0 = row_begin;
    while (row_end - r0 >= 8) {
        const int width = wide && row_end - r0 >= 16 ? 2 : 1;   // groups of eight side by side
        for (int h = 0; h < width; h++) kg_repack_into(format, base, row_bytes, r0 + 8 * h, blocks, scratch, width, h);
        for (size_t i = 0; i < (size_t)ntok * 8 * width; i++) states[i] = 0;
        for (int b0 = 0; b0 < blocks; b0 += KG_CHUNK) {
            const int b1 = b0 + KG_CHUNK < blocks ? b0 + KG_CHUNK : blocks;
            // Tokens t.. in a tile of n (a constant, so each size gets its own registers).
#define KG_TILE_ARGS scratch, b0, b1, blocks, codes + (size_t)t * code_stride, code_stride, d_x + (size_t)t * blocks, \
                     sums + (size_t)t * blocks * 16, run_sums + (size_t)t * blocks * 8, states + (size_t)8 * width * t
#if defined(KG_VNNI)
#define KG_TOKENS(n) (width == 2 ? kg_tile16(format, KG_TILE_ARGS, n) : kg_tile(format, KG_TILE_ARGS, n))
#else
#define KG_TOKENS(n) kg_tile(format, KG_TILE_ARGS, n)
#endif
            int t = 0;
            for (; t + KG_TILE <= ntok; t += KG_TILE) KG_TOKENS(KG_TILE);
            const int rest = ntok - t;
            if (rest == 3) KG_TOKENS(3);
            else if (rest == 2) KG_TOKENS(2);
            else if (rest == 1) KG_TOKENS(1);
#undef KG_TOKENS
#undef KG_TILE_ARGS
        }
        for (int t = 0; t < ntok; t++)
            for (int h = 0; h < width; h++)
                _mm256_storeu_ps(out + (size_t)t * out_stride + r0 + 8 * h, _mm256_loadu_ps(states + (size_t)8 * width * t + 8 * h));
        r0 += 8 * width;
    }
    return r0;
}
