// The integer block dots (quant_dots_body.h, quant_dots_iq16_body.h) compiled for AVX-512 VNNI (isa_ops.h);
// dispatch.c calls them.
#include "CKujiraKernels.h"
#include "quant_dots_decl.h"
#if defined(__x86_64__)
#define KUJIRA_BUILD_ISA KUJIRA_ISA_VNNI
#include "isa_ops.h"
#include "quant_dots_body.h"
#include "quant_dots_iq16_body.h"
#endif
