// Private to the CKujiraKernels target: what its kernel files share.
#ifndef CKUJIRA_KERNELS_SHARED_H
#define CKUJIRA_KERNELS_SHARED_H

// Byte position -> value index of a 32-value activation block (`kujira_vnni_block_order`): int32 lane j of vpdpbusd
// sums the same four products as the Swift kernels' `vpmaddwd` lane j.
static const unsigned char block_order[32] = {
    0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30,
    1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31,
};

// Instruction sets of the per-ISA kernels (the `isa` argument of the public functions; macros, for `#if`).
#define KUJIRA_ISA_AVX2 1
#define KUJIRA_ISA_VNNI 2

#endif
