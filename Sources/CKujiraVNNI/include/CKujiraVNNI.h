#ifndef CKUJIRA_VNNI_H
#define CKUJIRA_VNNI_H

#include <stddef.h>
#include <stdint.h>

/// The instructions Swift cannot express: AVX-512 VNNI `vpdpbusd` (u8 x s8, four products summed per int32
/// lane), and for Q6_K the AVX-512 byte unpack (zero-masking `vpermb`) feeding `vpdpwssd`. Everything else in
/// Kujira is Swift; KujiraTensor's Swift kernels are the fallback (docs/kernels.md).

/// 1 when this build has the kernels and the CPU runs AVX-512 F/BW/VL/VNNI/VBMI, else 0 (always 0 off x86-64).
int kujira_vnni_available(void);

/// Byte position -> value index of the activation plane: byte 4j+i of a 32-value block holds value
/// `kujira_vnni_block_order(4j+i)`, so int32 lane j sums the same four products as the Swift kernels' `vpmaddwd`
/// lane j (values {4j, 4j+2, 16+4j, 18+4j} for j < 4, {4m+1, 4m+3, 17+4m, 19+4m} for j = 4+m).
int kujira_vnni_block_order(int position);

/// Q8_0 rows [row_begin, row_end) of `rows` (34-byte blocks, `row_bytes` apart) dotted with `ntok` tokens.
/// `act`: per token `blocks * 32` bytes, each activation q + 128 (u8) in `kujira_vnni_block_order`; `act_scales`:
/// per token `blocks` floats. Token t of row r goes to `out[t * out_stride + r]`. Bit for bit the Swift `Q8_0.dot`.
void kujira_q8_0_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                          const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride);

/// Q4_0 (`has_min` 0, 18-byte blocks) or Q4_1 (`has_min` 1, 20-byte blocks) rows, as `kujira_q8_0_dot_rows`;
/// `act_sums`: per token `blocks` floats, d_x·Σq of each block (`Q8Row.scaledSums`). Bit for bit the Swift kernels.
void kujira_q4_dot_rows(int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                        const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride);

/// IQ4_NL (`xs` 0, 18-byte blocks of 32) or IQ4_XS (`xs` 1, 136-byte super-blocks of 256) rows, as
/// `kujira_q8_0_dot_rows` with `runs` = values per row / 32: the nibbles pick the 16 non-linear levels (vpshufb),
/// scale d (IQ4_NL) or d·(ls − 32) per run (IQ4_XS). Bit for bit the Swift `IQ4_NL.dot` / `IQ4_XS.dot` and `dot4`.
void kujira_iq4_dot_rows(int xs, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs,
                         const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride);

/// IQ2_XXS (`kind` 0, 66-byte super-blocks), IQ1_S (`kind` 1, 50-byte), IQ3_XXS (`kind` 2, 98-byte) or IQ3_S (`kind` 3,
/// 110-byte) rows, as `kujira_iq4_dot_rows`; the grids are the caller's (Swift `IQTables`). Each
/// run's 32 grid values (signed, or 8·g ± 1) become the s8 operand of the Q8_0 path. Bit for bit the Swift
/// `IQ2_XXS.dot` / `IQ1_S.dot` / `IQ3_XXS.dot` / `IQ3_S.dot`.
void kujira_iq_grid_dot_rows(int kind, const uint8_t *ksigns, const uint64_t *iq2xxs, const uint64_t *iq1s, const uint32_t *iq3xxs,
                             const uint32_t *iq3s, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act,
                             const float *act_scales, int ntok, float *out, int out_stride);

/// IQ2_XS (`is_s` 0, 74-byte super-blocks, grid `iq2xs`), IQ2_S (`is_s` 1, 82-byte, grid `iq2s`) or IQ1_M (`is_s` 2,
/// 56-byte, grid `iq1s`) rows, as `kujira_iq4_dot_rows`, with the two 16-value halves of each run dotted and scaled
/// separately (vnni_iq16.c). Bit for bit the Swift `IQ2_XS.dot` / `IQ2_S.dot` / `IQ1_M.dot`.
void kujira_iq2_16_dot_rows(int is_s, const uint8_t *ksigns, const uint64_t *grid, const void *rows, size_t row_bytes,
                            int row_begin, int row_end, int runs, const uint8_t *act, const float *act_scales, int ntok,
                            float *out, int out_stride);

/// Q5_0 (`has_min` 0, 22-byte blocks) or Q5_1 (`has_min` 1, 24-byte blocks) rows, as `kujira_q4_dot_rows`. Bit for bit
/// the Swift `Q5_0.dot` / `Q5_1.dot` and their `dot4`.
void kujira_q5_dot_rows(int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                        const uint8_t *act, const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride);

/// Q6_K rows (210-byte super-blocks, `blocks` per row) as `kujira_q8_0_dot_rows`, through `vpdpwssd`; `act`: per
/// token `blocks * 256` int16 activations in `Q8Row.lanes` order, `act_scales`: per token `blocks * 8` floats (one
/// per 32 values). Bit for bit the Swift `Q6_K.dot` / `dot4`.
void kujira_q6_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks,
                          const int16_t *act, const float *act_scales, int ntok, float *out, int out_stride);

/// Q4_K rows (144-byte super-blocks, `blocks` per row) as `kujira_q8_0_dot_rows` (`act`: the q + 128 plane);
/// `act_sums`: per token `blocks * 8` floats, d_x·Σq of each run of 32. Bit for bit the Swift `Q4_K.dot` / `dot4`.
void kujira_q4_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act,
                          const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride);

/// Q5_K rows (176-byte super-blocks) as `kujira_q4_k_dot_rows`, the fifth bits from qh. Bit for bit the Swift `Q5_K.dot` / `dot4`.
void kujira_q5_k_dot_rows(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act,
                          const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride);

/// 1 when this build has the float GEMM block and the CPU runs AVX-512F, else 0.
int kujira_sgemm_available(void);

/// C (m, n) (+)= A (m, k) · B (k, n) with A(i, l) = a[i * rs + l * cs], B(l, j) = b[l * ldb + j], C(i, j) = c[i * ldc + j]
/// (`accumulate` 0: C is overwritten). 8 x 32 register tiles, each element's products added in l order with FMA —
/// the same operations as the Swift `MatMul.block`, so the results are bit for bit equal.
void kujira_sgemm_block(int m, int n, int k, const float *a, long rs, long cs, const float *b, long ldb, float *c, long ldc, int accumulate);
/// C (m, n) (+)= A (m, k) · Bᵀ for B (n, k) row-major, columns [n0, n1) of C only (y = x · Wᵀ without transposing):
/// 4 x 4 tiles of 16-lane dot products along k, reduced at the end; AVX-512F, call only when `kujira_sgemm_available`.
void kujira_sgemm_nt_block(int m, int n0, int n1, int k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, int accumulate);
#endif
