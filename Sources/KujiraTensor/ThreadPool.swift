import Foundation
import Synchronization

/// Persistent worker threads that run data-parallel loops (`parallelFor`) without allocating per call.
///
/// Workers spin briefly after each job (so back-to-back matvecs do not pay a wake-up), then sleep on a
/// condition variable. Calls from inside a running job (nested parallelism) run inline.
public final class ThreadPool: Sendable {
    /// The process-wide pool the kernels use. Sized by `KUJIRA_THREADS` if set, else the core count;
    /// `setActiveThreads` (e.g. from `--threads`) changes how many threads later calls use.
    public static let shared = ThreadPool(threadCount: ProcessInfo.processInfo.environment["KUJIRA_THREADS"].flatMap(Int.init) ?? CPUFeatures.current.coreCount)

    private let state: PoolState

    /// A pool running loops on `threadCount` threads: the caller plus `threadCount - 1` workers.
    public init(threadCount: Int) {
        state = PoolState(maxThreads: max(1, threadCount))
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
    /// At most `activeThreads` ranges are made, each at least `grain` long (so tiny loops stay on the caller).
    /// `body` may only write memory no other range writes.
    public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let parts = min(activeThreads, max(1, n / max(1, grain)))
        if parts <= 1 || !state.tryBegin() {
            body(0..<n)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            state.run(parts: parts, n: n, body: escapable)
        }
    }
}

/// Shared state between a pool and its worker threads (kept apart so workers do not keep the pool alive).
private final class PoolState: @unchecked Sendable {
    let maxThreads: Int
    let active: Atomic<Int>
    /// `(job number << 16) | parts`: one load gives a worker both whether a job is new and whether it takes part.
    private let ticket = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Written by the caller before `ticket` changes and read only by participating workers, which the caller
    // waits for before writing them again.
    private var job: ((Range<Int>) -> Void)?
    private var jobCount = 0
    private var jobNumber = 0

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

    @inline(__always)
    private func range(part: Int, parts: Int) -> Range<Int> {
        (part * jobCount / parts)..<((part + 1) * jobCount / parts)
    }

    func run(parts: Int, n: Int, body: @escaping (Range<Int>) -> Void) {
        job = body
        jobCount = n
        jobNumber += 1
        remaining.store(parts - 1, ordering: .relaxed)
        ticket.store((jobNumber << 16) | parts, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        body(range(part: 0, parts: parts))
        var spins = 0
        while remaining.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        job = nil
        busy.store(false, ordering: .releasing)
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = ticket.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins < 200_000 {
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
            let parts = current & 0xFFFF
            if index < parts {
                runPart(index, parts: parts)
                // Only after `runPart` has dropped its reference to the job: the caller checks nothing escaped.
                remaining.subtract(1, ordering: .releasing)
            }
        }
    }

    @inline(never)
    private func runPart(_ index: Int, parts: Int) {
        guard let body = job else { return }
        body(range(part: index, parts: parts))
    }

    func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        ticket.add(1 << 16, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
