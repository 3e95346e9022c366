#ifndef ALLOCATION_COUNTING_H
#define ALLOCATION_COUNTING_H

/// Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by any thread since
/// `kujira_allocations_start`, until `kujira_allocations_stop` returns the count. Test support only: this target
/// defines the C allocator entry points of the test executable, which forward to glibc's own.
void kujira_allocations_start(void);
/// 1 where the allocator is interposed (glibc), 0 elsewhere: then nothing is counted.
int kujira_allocations_available(void);
long kujira_allocations_stop(void);
/// The largest single request (bytes) among the allocations counted since `kujira_allocations_start`.
long kujira_allocations_largest(void);

#endif
