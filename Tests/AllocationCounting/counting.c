// Counts heap allocations in the test process by interposing the C allocator: the test executable exports these
// symbols (Package.swift: --export-dynamic-symbol), so the dynamic linker binds every library's malloc calls
// (Swift runtime, Foundation) to them; they forward to glibc's __libc_* entry points.
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include "AllocationCounting.h"

#if defined(__GLIBC__)
int kujira_allocations_available(void) { return 1; }

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static atomic_long allocations = 0;
static atomic_long largest = 0;
static atomic_int counting = 0;

static inline void note(size_t size) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
        long seen = atomic_load_explicit(&largest, memory_order_relaxed);
        while ((long)size > seen && !atomic_compare_exchange_weak(&largest, &seen, (long)size)) {}
    }
}

void *malloc(size_t size) { note(size); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { note(count * size); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { note(size); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { note(size); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { note(size); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    note(size);
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void kujira_allocations_start(void) {
    atomic_store(&allocations, 0);
    atomic_store(&largest, 0);
    atomic_store(&counting, 1);
}

long kujira_allocations_stop(void) {
    atomic_store(&counting, 0);
    return atomic_load(&allocations);
}

long kujira_allocations_largest(void) { return atomic_load(&largest); }

#else
// No glibc (macOS, musl): nothing is interposed and nothing is counted; the tests that need counts skip.
int kujira_allocations_available(void) { return 0; }
void kujira_allocations_start(void) {}
long kujira_allocations_stop(void) { return 0; }
long kujira_allocations_largest(void) { return 0; }
#endif
