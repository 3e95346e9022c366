// Private to the CKujiraKernels target: the per-instruction-set integer block dots (quant_dots_vnni.c, quant_dots_avx2.c),
// each with the arguments of its public dispatcher (include/CKujiraKernels.h) minus `isa`.
#ifndef CKUJIRA_QUANT_DOTS_DECL_H
#define CKUJIRA_QUANT_DOTS_DECL_H
#include <stddef.h>
#include <stdint.h>
#include "kernels_shared.h"

#define KUJIRA_DECLARE_QUANT_DOTS(S) \
    void kujira_q8_0_dot_rows##S(const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act, \
                                 const float *act_scales, int ntok, float *out, int out_stride); \
    void kujira_q4_dot_rows##S(int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act, \
                               const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride); \
    void kujira_q5_dot_rows##S(int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act, \
                               const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride); \
    void kujira_iq4_dot_rows##S(int xs, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act, \
                                const float *act_scales, int ntok, float *out, int out_stride); \
    void kujira_iq_grid_dot_rows##S(int kind, const uint8_t *ksigns, const uint64_t *iq2xxs, const uint64_t *iq1s, const uint32_t *iq3xxs, \
                                    const uint32_t *iq3s, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, \
                                    const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride); \
    void kujira_iq2_16_dot_rows##S(int is_s, const uint8_t *ksigns, const uint64_t *grid, const void *rows, size_t row_bytes, int row_begin, \
                                   int row_end, int runs, const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride);

// A 32-byte-aligned buffer of at least `bytes` owned by the calling thread and reused by its next call (grown, never
// shrunk; freed at thread exit), or NULL when memory is short. dispatch.c.
unsigned char *kujira_thread_scratch(size_t bytes);

#if defined(__x86_64__)
// The K-quants' eight-rows prompt path built for AVX-512 VNNI (kquant_gemm8_vnni.c; `kg_rows` in kquant_gemm8.h).
int kujira_kg_rows_vnni(int format, const unsigned char *base, size_t row_bytes, int row_begin, int row_end, int blocks, const int8_t *codes,
                        const float *d_x, const int16_t *sums, int ntok, float *out, int out_stride);
KUJIRA_DECLARE_QUANT_DOTS(_vnni)
KUJIRA_DECLARE_QUANT_DOTS(_avx2)
#endif
#endif
