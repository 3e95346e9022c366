// The K-quants' eight-rows prompt path (kquant_gemm8.h) built for AVX-512 VNNI: the same repack and float steps as the AVX2
// build in kquant_q8k.c, with each run's integer products from `vpdpbusd` (`kg_runs_vnni`). Called by `k_rows` when the
// caller's `isa` is KUJIRA_ISA_VNNI; the same bits as the AVX2 build and the Swift reference (CBlockDotTests).
#include "CKujiraKernels.h"

#if defined(__x86_64__)
#define K_AVX2 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KG_VNNI 1
#include "avx2.h"
#include "quant_dots_decl.h"
#include "transpose8.h"
#include "kquant_unpack.h"
#include "kquant_gemm8.h"

K_AVX2 int kujira_kg_rows_vnni(int format, const unsigned char *base, size_t row_bytes, int row_begin, int row_end, int blocks,
                               const int8_t *codes, const float *d_x, const int16_t *sums, int ntok, float *out, int out_stride) {
    // Sixteen rows per zmm register, then a group of eight for what is left.
    if (format == 2) return kg_rows(2, base, row_bytes, row_begin, row_end, blocks, codes, d_x, sums, ntok, out, out_stride, 1);
    if (format == 1) return kg_rows(1, base, row_bytes, row_begin, row_end, blocks, codes, d_x, sums, ntok, out, out_stride, 1);
    return kg_rows(0, base, row_bytes, row_begin, row_end, blocks, codes, d_x, sums, ntok, out, out_stride, 1);
}
#endif
