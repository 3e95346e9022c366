/// glibc's `mallopt` (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// Allocation behaviour for training's large, short-lived buffers.
public enum TrainingMemory {
    /// Keeps freed buffers in the heap instead of returning them to the OS, so each step reuses the previous step's
    /// pages rather than page-faulting fresh zeroed ones (glibc otherwise mmaps and unmaps every large buffer).
    /// This holds for the main arena only: see `useOneArena`.
    public static func keepFreedMemory() {
        #if os(Linux)
        _ = glibcMallopt(-3, 1 << 30)  // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        #endif
        useOneArena()
    }

    /// Makes threads that have not allocated yet share glibc's main arena. Other arenas live in 64 MB heaps that glibc
    /// unmaps as soon as they empty, whatever the trim threshold, so a training step run from such a thread (Swift's
    /// async commands run on dispatch's worker threads) page-faulted its buffers afresh every step: 8.2k faults per
    /// step with the MTP module, 0.9k after. Call it first thing in `main`, before other threads start.
    public static func useOneArena() {
        #if os(Linux)
        _ = glibcMallopt(-8, 1)  // M_ARENA_MAX
        #endif
    }
}

/// A zero-initialised float32 buffer owned by one training pass (activations, gradients, scratch).
///
/// A class so activations saved for the backward pass are shared, not copied; the pointer stays valid for
/// the buffer's lifetime. Threads write disjoint ranges only.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
        pointer.initialize(repeating: 0, count: Swift.max(count, 1))
    }

    /// A buffer whose contents are undefined: for outputs a kernel overwrites completely.
    public init(uninitializedCount count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    @inline(__always)
    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// A copy as an array.
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }
}
