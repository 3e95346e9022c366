#ifndef CKUJIRA_VNNI_H
#define CKUJIRA_VNNI_H

#include <stddef.h>
#include <stdint.h>

/// Kujira's C kernels: what Swift cannot compile per function for the CPU it runs on. Swift has no per-function target
/// attributes, so code compiled for baseline x86-64 gets no AVX2, FMA or F16C; these functions carry their own target
/// attributes and are chosen at run time (`KernelISA` in KujiraTensor). The integer block dots exist twice, for AVX-512
/// VNNI (`vpdpbusd`, `vpdpwssd`, `vpermb`) and for AVX2 (the same integer lane sums from `vpmaddubsw`/`vpmaddwd`), selected by
/// their `isa` argument (1 = AVX2 + FMA + F16C, 2 = AVX-512 F/BW/VL/VNNI/VBMI); the float kernels need AVX2 + FMA + F16C.
/// Every kernel gives the bits of its Swift reference in KujiraTensor (docs/kernels.md), which serves other CPUs.

/// The best instruction set these kernels can use here: 2 (AVX-512 VNNI), 1 (AVX2 + FMA + F16C) or 0 (none; always 0 off x86-64).
int kujira_isa_supported(void);

/// What runs: `kujira_isa_supported()` capped by the environment variable KUJIRA_ISA (`swift`: 0, `avx2`: at most 1), set
/// once when the library loads. Kept in a plain global so the check before every kernel call is one load.
extern int kujira_selected_isa_value;
static inline int kujira_selected_isa(void) { return kujira_selected_isa_value; }
/// The cap alone (2 when KUJIRA_ISA is unset or names neither), for kernels outside the two levels (the AVX-512F GEMM tile).
extern int kujira_isa_cap_value;
static inline int kujira_isa_cap(void) { return kujira_isa_cap_value; }

/// Byte position -> value index of the activation plane: byte 4j+i of a 32-value block holds value
/// `kujira_vnni_block_order(4j+i)`, so int32 lane j sums the same four products as the Swift kernels' `vpmaddwd`
/// lane j (values {4j, 4j+2, 16+4j, 18+4j} for j < 4, {4m+1, 4m+3, 17+4m, 19+4m} for j = 4+m).
int kujira_vnni_block_order(int position);

/// Q8_0 rows [row_begin, row_end) of `rows` (34-byte blocks, `row_bytes` apart) dotted with `ntok` tokens.
/// `act`: per token `blocks * 32` bytes, each activation q + 128 (u8) in `kujira_vnni_block_order`; `act_scales`:
/// per token `blocks` floats. Token t of row r goes to `out[t * out_stride + r]`. Bit for bit the Swift `Q8_0.dot`.
void kujira_q8_0_dot_rows(int isa, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                          const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride);

/// Q4_0 (`has_min` 0, 18-byte blocks) or Q4_1 (`has_min` 1, 20-byte blocks) rows, as `kujira_q8_0_dot_rows`;
/// `act_sums`: per token `blocks` floats, d_x·Σq of each block (`Q8Row.scaledSums`). Bit for bit the Swift kernels.
void kujira_q4_dot_rows(int isa, int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                        const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride);

/// IQ4_NL (`xs` 0, 18-byte blocks of 32) or IQ4_XS (`xs` 1, 136-byte super-blocks of 256) rows, as
/// `kujira_q8_0_dot_rows` with `runs` = values per row / 32: the nibbles pick the 16 non-linear levels (vpshufb),
/// scale d (IQ4_NL) or d·(ls − 32) per run (IQ4_XS). Bit for bit the Swift `IQ4_NL.dot` / `IQ4_XS.dot` and `dot4`.
void kujira_iq4_dot_rows(int isa, int xs, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs,
                         const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride);

/// IQ2_XXS (`kind` 0, 66-byte super-blocks), IQ1_S (`kind` 1, 50-byte), IQ3_XXS (`kind` 2, 98-byte) or IQ3_S (`kind` 3,
/// 110-byte) rows, as `kujira_iq4_dot_rows`; the grids are the caller's (Swift `IQTables`). Each
/// run's 32 grid values (signed, or 8·g ± 1) become the s8 operand of the Q8_0 path. Bit for bit the Swift
/// `IQ2_XXS.dot` / `IQ1_S.dot` / `IQ3_XXS.dot` / `IQ3_S.dot`.
void kujira_iq_grid_dot_rows(int isa, int kind, const uint8_t *ksigns, const uint64_t *iq2xxs, const uint64_t *iq1s, const uint32_t *iq3xxs,
                             const uint32_t *iq3s, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act,
                             const float *act_scales, int ntok, float *out, int out_stride);

/// IQ2_XS (`is_s` 0, 74-byte super-blocks, grid `iq2xs`), IQ2_S (`is_s` 1, 82-byte, grid `iq2s`) or IQ1_M (`is_s` 2,
/// 56-byte, grid `iq1s`) rows, as `kujira_iq4_dot_rows`, with the two 16-value halves of each run dotted and scaled
/// separately (quant_dots_iq16_body.h). Bit for bit the Swift `IQ2_XS.dot` / `IQ2_S.dot` / `IQ1_M.dot`.
void kujira_iq2_16_dot_rows(int isa, int is_s, const uint8_t *ksigns, const uint64_t *grid, const void *rows, size_t row_bytes,
                            int row_begin, int row_end, int runs, const uint8_t *act, const float *act_scales, int ntok,
                            float *out, int out_stride);

/// Q5_0 (`has_min` 0, 22-byte blocks) or Q5_1 (`has_min` 1, 24-byte blocks) rows, as `kujira_q4_dot_rows`. Bit for bit
/// the Swift `Q5_0.dot` / `Q5_1.dot` and their `dot4`.
void kujira_q5_dot_rows(int isa, int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                        const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride);

/// 256-value blocks of activations quantized as `Q8KActivations.quantizeBlock` (llama.cpp's q8_K, AVX2): per block b of
/// `x + 256b`, iscale = −127 / (the value of largest magnitude), codes round-half-even(x·iscale) capped at 127 (int8, value
/// order) at `codes + 256b`, `scales[b]` = 1 / iscale, the int16 sums of each 16 codes at `sums + 16b`. A block with a
/// non-finite value gets zero codes and a NaN scale; a block whose iscale overflows (all zero, or
/// every magnitude below 2^-121) zero codes and scale 0.
void kujira_q8k_quantize(const float *x, long blocks, int8_t *codes, float *scales, int16_t *sums);
/// Q4_K (`format` 0, 144-byte super-blocks), Q5_K (1, 176-byte) or Q6_K (2, 210-byte) rows [row_begin, row_end) dotted with
/// `ntok` tokens of Q8_K activations (`kujira_q8k_quantize`: per token `blocks * 256` codes, `blocks` scales, `blocks * 16`
/// sums): token t of row r goes to `out[t * out_stride + r]`. AVX2, with the prompt batches' eight-rows path in AVX-512 VNNI
/// when `isa` is KUJIRA_ISA_VNNI (2). Bit for bit `KQuantQ8K.dot` / `q6Dot` at either level; a token's result does not
/// depend on ntok.
void kujira_k_q8k_dot_rows(int isa, int format, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                           const int8_t *codes, const float *scales, const int16_t *sums, int ntok, float *out, int out_stride);

/// 1 when this build has the float GEMM block and the CPU runs AVX-512F, else 0.
int kujira_sgemm_available(void);

/// C (m, n) (+)= A (m, k) · B (k, n) with A(i, l) = a[i * rs + l * cs], B(l, j) = b[l * ldb + j], C(i, j) = c[i * ldc + j]
/// (`accumulate` 0: C is overwritten). 8 x 32 register tiles, each element's products added in l order with FMA —
/// the same operations as the Swift `MatMul.block`, so the results are bit for bit equal.
void kujira_sgemm_block(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc, int accumulate);
/// C (m, n) (+)= A (m, k) · Bᵀ for B (n, k) row-major, columns [n0, n1) of C only (y = x · Wᵀ without transposing):
/// 4 x 4 tiles of 16-lane dot products along k, reduced at the end; AVX-512F, call only when `kujira_sgemm_available`.
void kujira_sgemm_nt_block(int m, int n0, int n1, int k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, int accumulate);
/// Q2_K (84-byte super-blocks) or Q3_K (110-byte) rows [row_begin, row_end) dotted with `ntok` tokens, AVX2: `lanes` are
/// `Q8Row.lanes` (per token `blocks * 256` int16, [even | odd] per 16 values), `act_scales` one float per 32 values,
/// `act_sums` one int32 per 16 values; token t of row r goes to `out[t * out_stride + r]`. Bit for bit `Q2_K.dot` / `Q3_K.dot`.
void kujira_q2_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                          const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride);
void kujira_q3_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const int16_t *lanes,
                          const float *act_scales, const int32_t *act_sums, int ntok, float *out, int out_stride);

/// 32-value blocks of activations quantized as `Q8Activations.quantizeBlock` (AVX2): per block b of `x + 32b`, the int16 codes
/// as [even | odd] per 16 at `lanes + 32b`, the scale (`scales[b]`, also in 8 lanes at `scale_vectors + 8b`), the two int32
/// sums of 16 codes, scale·(their sum) and, when `plane` is not NULL, the 32 bytes q + 128 in `kujira_vnni_block_order`.
void kujira_q8_quantize_blocks(const float *x, long blocks, int16_t *lanes, float *scales, float *scaled_sums, int32_t *sums,
                               float *scale_vectors, uint8_t *plane);

/// The float kernels, AVX2 + FMA + F16C; each gives the bits of the Swift function named.
/// a · b (`Linear.dot`).
float kujira_dot_f32(const float *a, const float *b, long n);
/// An F32 weight row · x (`FloatDots.f32`).
float kujira_row_dot_f32(const void *w, const float *x, long count);
/// An F16 (`is_f16` 1) or BF16 row · x split in 2 phases (`FloatDots.f16` / `bf16`).
float kujira_row_dot_half(int is_f16, const void *w, const float *xs, long count);
/// An F16/BF16 row decoded into Floats in the 2-phase order (`FloatDots.decodeHalfRow`).
void kujira_decode_half_row(int is_f16, const void *w, long count, float *out);
/// A decoded row · x (`FloatDots.splitDecoded`).
float kujira_split_decoded_dot(const float *w, const float *xs, long count);
/// FP8 e4m3 values [start, end) of a row · x split in 4 phases (`FloatDots.e4m3`); `table`: the 256 decoded codes.
float kujira_e4m3_dot(const void *w, const float *xs, long start, long end, const float *table);
/// An FP8 row decoded through `table` in the 4-phase order, `special[c]` 1 for chunks `e4m3` takes its scalar path
/// (`FloatDots.decodeE4M3Row`).
void kujira_decode_e4m3_row(const void *w, long count, const float *table, float *out, unsigned char *special);
/// `FloatDots.e4m3Decoded`: a row decoded by `decodeE4M3Row`, `special` one byte per 16 values.
float kujira_e4m3_decoded_dot(const float *w, const unsigned char *special, const float *xs, long start, long end);
/// out (n,) += a · x (`Elementwise.addScaled`).
void kujira_add_scaled(const float *x, float a, float *out, long n);
/// out[i] (+ out[i] when `adding`) = `kujira_dot_f32`(q, row i) for the `count` rows `stride` floats apart (`CacheRows.dots`).
void kujira_dot_f32_rows(const float *q, const float *rows, long stride, long count, long n, float *out, int adding);
/// out (n,) += weights[i] · row i for the `count` rows `stride` floats apart, in order: `kujira_add_scaled` row after row
/// (`CacheRows.addScaledRows`).
void kujira_add_scaled_rows(const float *rows, long stride, const float *weights, long count, long n, float *out);
/// Floats to IEEE halves, nearest even (`HalfRows.store`).
void kujira_half_store(const float *row, long count, uint16_t *out);
/// q · a half row (`HalfRows.dot`).
float kujira_half_dot(const float *q, const uint16_t *row, long count);
/// out += weight · a half row (`HalfRows.addScaled`).
void kujira_half_add_scaled(const uint16_t *row, long count, float weight, float *out);
/// out[i] (+ out[i] when `adding`) = `kujira_half_dot`(q, half row i) for `count` rows `stride` halves apart (`HalfRows.dots`).
void kujira_half_dot_rows(const float *q, const uint16_t *rows, long stride, long count, long n, float *out, int adding);
/// out (n,) += weights[i] · half row i for `count` rows `stride` halves apart, in order (`HalfRows.addScaledRows`).
void kujira_half_add_scaled_rows(const uint16_t *rows, long stride, const float *weights, long count, long n, float *out);
/// q · an int8 row with a scale per group (`Int8RowDots.dot`).
float kujira_int8_dot(const float *q, const int8_t *codes, const float *scales, long group_size, long count);
/// out += weight · an int8 row with a scale per group (`Int8RowDots.addScaled`).
void kujira_int8_add_scaled(const int8_t *codes, const float *scales, long group_size, long count, float weight, float *out);
/// Σ_h weights[h]·relu(scale·q_h · tile) for a (dim, 8) tile of 8 keys (`IndexerScores.blockScores`), into out (8,).
void kujira_indexer_block_scores(const float *q, int heads, int dim, const float *weights, float scale, const float *tile, float *out);
/// `GGMLLinear.q4_1Dot` / `q8_0Dot` (llama.cpp's numerics): one row of `blocks` blocks with int16 codes `q`, per-block
/// activation scales `d` (and Q4_1's fp16-rounded sums `s`).
float kujira_ggml_q4_1_dot(const void *row, const int16_t *q, const float *d, const float *s, long blocks);
float kujira_ggml_q8_0_dot(const void *row, const int16_t *q, const float *d, long blocks);
/// `GGMLMath.vectorDot` / `dot` (llama.cpp's f16 dots) of Floats with IEEE halves, and the attention's value step
/// acc[16·d] = fma(p, value[d], acc[16·d]) for d < count.
float kujira_ggml_vector_dot_f16(const float *a, const uint16_t *b, long count);
float kujira_ggml_dot_f16(const float *a, const uint16_t *b, long count);
void kujira_ggml_accumulate_f16(float *acc, const uint16_t *value, long count, float p);
/// `kujira_sgemm_block` for AVX2 + FMA: 6 x 16 register tiles, the Swift `MatMul.swiftBlock` (bit for bit, tails included).
void kujira_sgemm_block_avx2(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc, int accumulate);
#endif
