// The public integer block dots (include/CKujiraKernels.h): each calls its AVX-512 VNNI or AVX2 build. Off x86-64 they
// do nothing and `kujira_isa_supported` returns 0, so Swift never calls them (its kernels serve there).
#include "CKujiraKernels.h"
#include "quant_dots_decl.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

int kujira_vnni_block_order(int position) { return block_order[position & 31]; }

// The calling thread's scratch (quant_dots_decl.h): one buffer per thread, grown when a call needs more and freed when
// the thread exits, so kernel calls do not allocate (for prompt-sized calls: no mmap, page faults and munmap per call).
struct thread_scratch { unsigned char *bytes; size_t capacity; };
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_release(void *p) {
    struct thread_scratch *s = p;
    free(s->bytes);
    free(s);
}
static void scratch_make_key(void) { pthread_key_create(&scratch_key, scratch_release); }

unsigned char *kujira_thread_scratch(size_t bytes) {
    pthread_once(&scratch_once, scratch_make_key);
    struct thread_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) { free(s); return NULL; }
    }
    if (s->capacity < bytes) {
        size_t grown = s->capacity + s->capacity / 2;
        size_t capacity = ((bytes > grown ? bytes : grown) + 4095) & ~(size_t)4095;
        unsigned char *fresh = aligned_alloc(32, capacity);
        if (!fresh) return NULL;
        free(s->bytes);
        s->bytes = fresh;
        s->capacity = capacity;
    }
    return s->bytes;
}

int kujira_selected_isa_value = 0;
int kujira_isa_cap_value = KUJIRA_ISA_VNNI;

// Runs when the library loads, before any Swift code: the cap KUJIRA_ISA sets, and the CPU's best level under it.
__attribute__((constructor)) static void kujira_select_isa(void) {
    const char *cap = getenv("KUJIRA_ISA");
    if (cap && strcasecmp(cap, "swift") == 0) kujira_isa_cap_value = 0;
    if (cap && strcasecmp(cap, "avx2") == 0) kujira_isa_cap_value = KUJIRA_ISA_AVX2;
    const int isa = kujira_isa_supported();
    kujira_selected_isa_value = isa < kujira_isa_cap_value ? isa : kujira_isa_cap_value;
}

#if defined(__x86_64__)

int kujira_isa_supported(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("fma")
        && __builtin_cpu_supports("f16c"))
        return KUJIRA_ISA_VNNI;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return KUJIRA_ISA_AVX2;
    return 0;
}

#define KUJIRA_DISPATCH(name, ...) do { if (isa == KUJIRA_ISA_VNNI) name##_vnni(__VA_ARGS__); else name##_avx2(__VA_ARGS__); } while (0)

#else

int kujira_isa_supported(void) { return 0; }

#define KUJIRA_DISPATCH(name, ...) do { (void)isa; } while (0)

#endif

void kujira_q8_0_dot_rows(int isa, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act,
                          const float *act_scales, int ntok, float *out, int out_stride) {
    KUJIRA_DISPATCH(kujira_q8_0_dot_rows, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, ntok, out, out_stride);
}

void kujira_q4_dot_rows(int isa, int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act,
                        const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride) {
    KUJIRA_DISPATCH(kujira_q4_dot_rows, has_min, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
}

void kujira_q5_dot_rows(int isa, int has_min, const void *rows, size_t row_bytes, int row_begin, int row_end, int blocks, const uint8_t *act,
                        const float *act_scales, const float *act_sums, int ntok, float *out, int out_stride) {
    KUJIRA_DISPATCH(kujira_q5_dot_rows, has_min, rows, row_bytes, row_begin, row_end, blocks, act, act_scales, act_sums, ntok, out, out_stride);
}

void kujira_iq4_dot_rows(int isa, int xs, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act,
                         const float *act_scales, int ntok, float *out, int out_stride) {
    KUJIRA_DISPATCH(kujira_iq4_dot_rows, xs, rows, row_bytes, row_begin, row_end, runs, act, act_scales, ntok, out, out_stride);
}

void kujira_iq_grid_dot_rows(int isa, int kind, const uint8_t *ksigns, const uint64_t *iq2xxs, const uint64_t *iq1s, const uint32_t *iq3xxs,
                             const uint32_t *iq3s, const void *rows, size_t row_bytes, int row_begin, int row_end, int runs, const uint8_t *act,
                             const float *act_scales, int ntok, float *out, int out_stride) {
    KUJIRA_DISPATCH(kujira_iq_grid_dot_rows, kind, ksigns, iq2xxs, iq1s, iq3xxs, iq3s, rows, row_bytes, row_begin, row_end, runs, act,
                    act_scales, ntok, out, out_stride);
}

void kujira_iq2_16_dot_rows(int isa, int is_s, const uint8_t *ksigns, const uint64_t *grid, const void *rows, size_t row_bytes, int row_begin,
                            int row_end, int runs, const uint8_t *act, const float *act_scales, int ntok, float *out, int out_stride) {
    KUJIRA_DISPATCH(kujira_iq2_16_dot_rows, is_s, ksigns, grid, rows, row_bytes, row_begin, row_end, runs, act, act_scales, ntok, out, out_stride);
}
