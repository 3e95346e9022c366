import Foundation
import Synchronization

/// Persistent worker threads that run data-parallel loops (`parallelFor`) without allocating per call.
///
/// The range is cut into a few chunks per thread that threads take from a shared counter, so a worker that
/// the OS has not scheduled yet never holds the caller up: the caller takes its chunks, then cancels any
/// participation a worker has not claimed, and only waits for workers that are actually running. Workers
/// spin briefly after each job (back-to-back matvecs of a decode step do not pay a wake-up), then sleep on
/// a condition variable. Calls from inside a running job (nested parallelism) run inline.
public final class ThreadPool: Sendable {
    /// The process-wide pool the kernels use. Sized by `KUJIRA_THREADS` if set, else the core count;
    /// `setActiveThreads` (e.g. from `--threads`) changes how many threads later calls use.
    public static let shared = ThreadPool(threadCount: ProcessInfo.processInfo.environment["KUJIRA_THREADS"].flatMap(Int.init) ?? CPUFeatures.current.coreCount)

    private let state: PoolState

    /// A pool running loops on `threadCount` threads (at most 63): the caller plus `threadCount - 1` workers.
    public init(threadCount: Int) {
        state = PoolState(maxThreads: min(max(1, threadCount), 63))
    }

    deinit { state.shutdown() }

    /// Threads a `parallelFor` uses now (caller included).
    public var activeThreads: Int { state.active.load(ordering: .relaxed) }

    /// Uses `count` threads from now on (clamped to 1...`maxThreads`, the size the pool was created with).
    public func setActiveThreads(_ count: Int) {
        state.active.store(min(max(1, count), state.maxThreads), ordering: .relaxed)
    }

    /// Largest number of threads this pool can use.
    public var maxThreads: Int { state.maxThreads }

    /// Calls `body` on disjoint, contiguous ranges covering `0..<n`, concurrently, and returns when all are done.
    ///
    /// Ranges are at least `grain` long (so tiny loops stay on the caller); up to 4 per active thread are made.
    /// `body` may only write memory no other range writes.
    public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let pieces = max(1, n / max(1, grain))
        let threads = min(activeThreads, pieces)
        if threads <= 1 || !state.tryBegin() {
            body(0..<n)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            state.run(threads: threads, chunks: min(pieces, 4 * threads), n: n, body: escapable)
        }
    }
}

/// Shared state between a pool and its worker threads (kept apart so workers do not keep the pool alive).
private final class PoolState: @unchecked Sendable {
    let maxThreads: Int
    let active: Atomic<Int>
    /// Bumped for every job: workers watch it to wake up.
    private let ticket = Atomic<Int>(0)
    /// Bit i set: worker i may still claim a part of the current job (cleared by the claim or by the caller).
    private let offered = Atomic<Int>(0)
    /// Workers that claimed a part and have finished it.
    private let finished = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Written by the caller before `offered`/`ticket` are published and read only by workers that claimed a
    // part, which the caller waits for before it writes them again.
    private var job: ((Range<Int>) -> Void)?
    private var jobCount = 0
    private var jobChunks = 0

    init(maxThreads: Int) {
        self.maxThreads = maxThreads
        active = Atomic(maxThreads)
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for worker in 1..<max(maxThreads, 1) {
            let thread = Thread { [self] in workerLoop(index: worker) }
            thread.name = "kujira-worker-\(worker)"
            thread.start()
        }
    }

    func tryBegin() -> Bool {
        busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    /// Takes chunks from the shared counter until none are left.
    @inline(__always)
    private func runChunks(_ body: (Range<Int>) -> Void) {
        while true {
            let chunk = nextChunk.add(1, ordering: .relaxed).oldValue
            guard chunk < jobChunks else { return }
            body((chunk * jobCount / jobChunks)..<((chunk + 1) * jobCount / jobChunks))
        }
    }

    func run(threads: Int, chunks: Int, n: Int, body: @escaping (Range<Int>) -> Void) {
        job = body
        jobCount = n
        jobChunks = chunks
        nextChunk.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        let mask = ((1 << threads) - 1) & ~1  // workers 1..<threads
        offered.store(mask, ordering: .sequentiallyConsistent)
        ticket.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        runChunks(body)
        // Withdraw the parts nobody claimed; wait only for the workers that did (they are running).
        let unclaimed = offered.exchange(0, ordering: .sequentiallyConsistent)
        let claimed = mask.nonzeroBitCount - unclaimed.nonzeroBitCount
        var spins = 0
        while finished.load(ordering: .acquiring) < claimed {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        job = nil
        busy.store(false, ordering: .releasing)
    }

    private func workerLoop(index: Int) {
        let bit = 1 << index
        var seen = 0
        while true {
            var spins = 0
            var current = ticket.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins < 100_000 {
                    current = ticket.load(ordering: .acquiring)
                    continue
                }
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while ticket.load(ordering: .sequentiallyConsistent) == seen && !stopping.load(ordering: .relaxed) {
                    pthread_cond_wait(condition, mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
                current = ticket.load(ordering: .acquiring)
                spins = 0
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            // Claim this worker's part of whatever job is current; the caller cannot start another job until
            // a claimed part is finished, so the job fields stay valid while we run.
            let before = offered.bitwiseAnd(~bit, ordering: .sequentiallyConsistent).oldValue
            if before & bit != 0 {
                runClaimedPart()
                // Only after `runClaimedPart` has dropped its reference to the job: the caller checks nothing escaped.
                finished.add(1, ordering: .releasing)
            }
        }
    }

    @inline(never)
    private func runClaimedPart() {
        guard let body = job else { return }
        runChunks(body)
    }

    func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        ticket.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
