import Foundation
import KujiraGeneration
import KujiraModels

/// What a running request receives, in order: event batches, then exactly one `finished` or `failed`.
public enum SchedulerOutput: Sendable {
    case events([GenerationEvent])
    case finished(FinishReason, GenerationUsage)
    case failed(APIError)
}

/// The caller's side of a submitted request: its output and a way to stop it.
public struct GenerationHandle: Sendable {
    public let stream: AsyncStream<SchedulerOutput>
    /// Stops generation before the next token and frees the slot.
    public let cancel: @Sendable () -> Void
}

/// A queued or running request: its inputs, its output stream, and a cancel flag the client side can set.
final class GenerationJob: @unchecked Sendable {
    let prompt: PreparedPrompt
    let options: GenerationOptions
    let continuation: AsyncStream<SchedulerOutput>.Continuation
    private let lock = NSLock()
    private var cancelled = false
    /// Owned by the scheduler thread once the job runs.
    var sequence: TextSequence?
    var slotIndex = -1
    var started = Date()

    init(prompt: PreparedPrompt, options: GenerationOptions, continuation: AsyncStream<SchedulerOutput>.Continuation) {
        self.prompt = prompt
        self.options = options
        self.continuation = continuation
    }

    func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

/// Owns the model: one dedicated thread runs every forward pass (off the NIO event loops), at most
/// `maxConcurrent` sequences are active, each in its own KV-cache slot. Each round gives every sequence still
/// prefilling one prompt chunk, then runs all generating sequences' next tokens as one batched decoding step
/// (continuous batching: sequences join and leave between rounds). Requests past `maxQueue` waiting are refused (429).
public final class GenerationScheduler: @unchecked Sendable {
    public let pipeline: TextPipeline
    public let maxConcurrent: Int
    public let maxQueue: Int
    private let metrics: ServerMetrics?
    private let condition = NSCondition()
    private var waiting: [GenerationJob] = []
    private var active: [GenerationJob] = []
    private var stopped = false
    private var paused = false
    private var peak = 0
    private var largestBatch = 0
    /// Slots (KV caches) live on the scheduler thread only; `slotBusy` is guarded by `condition`.
    private var slots: [SequenceSlot]
    private var slotBusy: [Bool]
    private var thread: Thread?
    /// Prompt prefixes shared by all slots (`--cache-ram`, `--cache-dir`); used on the scheduler thread only.
    private let prefixCache: PrefixCache?

    public init(pipeline: TextPipeline, maxConcurrent: Int = 1, maxQueue: Int = 16, metrics: ServerMetrics? = nil,
                prefixCache: PrefixCache? = nil) {
        self.pipeline = pipeline
        self.prefixCache = prefixCache
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueue = max(0, maxQueue)
        self.metrics = metrics
        slots = (0..<max(1, maxConcurrent)).map { _ in SequenceSlot(model: pipeline.model) }
        slotBusy = Array(repeating: false, count: max(1, maxConcurrent))
        let thread = Thread { [weak self] in self?.loop() }
        thread.name = "kujira-scheduler"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    deinit { shutdown() }

    /// Stops the thread after the current round: waiting requests fail now, running ones when the round ends, all
    /// with `APIError.shuttingDown` (the last event of their streams).
    public func shutdown() {
        condition.lock()
        stopped = true
        let dropped = waiting
        waiting.removeAll()
        metrics?.queueDepth.set(0.0)
        condition.broadcast()
        condition.unlock()
        for job in dropped { job.continuation.yield(.failed(.shuttingDown)); job.continuation.finish() }
    }

    /// Holds every sequence before its next step (tests use it to fill the queue deterministically).
    public func pause() { condition.withLock { paused = true } }

    /// Resumes after `pause()`.
    public func resume() {
        condition.withLock {
            paused = false
            condition.broadcast()
        }
    }

    /// Requests waiting for a slot.
    public var queueDepth: Int { condition.withLock { waiting.count } }
    /// Sequences being generated.
    public var activeCount: Int { condition.withLock { active.count } }
    /// Most sequences that were ever interleaved in one round.
    public var peakActiveCount: Int { condition.withLock { peak } }
    /// Most sequences that ever decoded together in one batched step.
    public var largestDecodeBatch: Int { condition.withLock { largestBatch } }

    /// Queues a request; the stream yields its output. Throws 429 when the queue is full. Ending iteration of the
    /// stream (client gone) cancels the request; it leaves its slot before the next token.
    public func submit(prompt: PreparedPrompt, options: GenerationOptions) throws -> GenerationHandle {
        let (stream, continuation) = AsyncStream.makeStream(of: SchedulerOutput.self, bufferingPolicy: .unbounded)
        let job = GenerationJob(prompt: prompt, options: options, continuation: continuation)
        continuation.onTermination = { _ in job.cancel() }
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { throw APIError.shuttingDown }
        // Free slots take requests at once; the queue holds the rest.
        let freeSlots = maxConcurrent - active.count
        guard waiting.count < maxQueue + max(0, freeSlots) else { throw APIError.queueFull(waiting.count) }
        waiting.append(job)
        metrics?.queueDepth.set(Double(waiting.count))
        condition.signal()
        return GenerationHandle(stream: stream, cancel: { job.cancel() })
    }

    private func loop() {
        while true {
            condition.lock()
            while !stopped && (paused || (active.isEmpty && waiting.isEmpty)) { condition.wait() }
            if stopped {
                let running = active
                active.removeAll()
                for index in slotBusy.indices { slotBusy[index] = false }
                metrics?.activeSequences.set(0.0)
                condition.unlock()
                for job in running {
                    if let sequence = job.sequence { _ = sequence.finish(.cancelled) }
                    job.continuation.yield(.failed(.shuttingDown))
                    job.continuation.finish()
                }
                return
            }
            while active.count < maxConcurrent && !waiting.isEmpty {
                let job = waiting.removeFirst()
                job.slotIndex = bestSlot(for: job.prompt.tokens)
                slotBusy[job.slotIndex] = true
                active.append(job)
            }
            metrics?.queueDepth.set(Double(waiting.count))
            metrics?.activeSequences.set(Double(active.count))
            peak = max(peak, active.count)
            let round = active
            condition.unlock()
            runRound(round)
        }
    }

    /// The free slot whose cached tokens share the longest prefix with `prompt` (guarded by `condition`).
    private func bestSlot(for prompt: [Int]) -> Int {
        var best = -1, bestLength = -1
        for (index, slot) in slots.enumerated() where !slotBusy[index] {
            var length = 0
            let tokens = slot.tokens
            while length < min(tokens.count, prompt.count) && tokens[length] == prompt[length] { length += 1 }
            if length > bestLength { best = index; bestLength = length }
        }
        return best
    }

    /// One step of every active sequence: a prefill chunk for each sequence still reading its prompt (in order), then
    /// ONE batched decoding step (`LanguageModel.decodeBatch`) for all sequences that are generating, so each weight
    /// is read once per round instead of once per sequence.
    private func runRound(_ jobs: [GenerationJob]) {
        var decoding: [(job: GenerationJob, sequence: TextSequence, token: Int)] = []
        for job in jobs {
            let slot = slots[job.slotIndex]
            if job.isCancelled {
                if let sequence = job.sequence { _ = sequence.finish(.cancelled) }
                release(job, output: nil)
                continue
            }
            do {
                let sequence: TextSequence
                if let existing = job.sequence {
                    sequence = existing
                } else {
                    sequence = try pipeline.makeSequence(prompt: job.prompt, options: job.options)
                    sequence.attach(to: slot, prefixCache: prefixCache)
                    job.sequence = sequence
                    job.started = Date()
                }
                if let token = sequence.pendingDecodeToken, !sequence.prepareDrafts(slot: slot) {
                    do {
                        try pipeline.model.validate(token: token, cache: slot.cache)
                    } catch {
                        slot.reset()
                        throw error
                    }
                    decoding.append((job, sequence, token))
                    continue
                }
                let before = sequence.usage.completionTokens
                deliver(job, sequence, events: try sequence.step(model: pipeline.model, slot: slot), before: before)
            } catch {
                release(job, output: .failed(APIError.from(error)))
            }
        }
        guard !decoding.isEmpty else { return }
        condition.withLock { largestBatch = max(largestBatch, decoding.count) }
        let logits: UnsafeBufferPointer<Float>
        do {
            logits = try pipeline.model.decodeBatch(decoding.map(\.token), caches: decoding.map { slots[$0.job.slotIndex].cache })
        } catch {
            // The caches' contents are unknown after a failed pass.
            for entry in decoding {
                slots[entry.job.slotIndex].reset()
                release(entry.job, output: .failed(APIError.from(error)))
            }
            return
        }
        let vocab = logits.count / decoding.count
        for (b, entry) in decoding.enumerated() {
            let before = entry.sequence.usage.completionTokens
            let row = UnsafeBufferPointer(rebasing: logits[(b * vocab)..<((b + 1) * vocab)])
            deliver(entry.job, entry.sequence, events: entry.sequence.consumeDecoded(logits: row, slot: slots[entry.job.slotIndex]), before: before)
        }
    }

    /// Sends one step's events (a heartbeat when empty) and finishes the job when its sequence ended.
    private func deliver(_ job: GenerationJob, _ sequence: TextSequence, events: [GenerationEvent], before: Int) {
        metrics?.generatedTokens.increment(by: Int64(sequence.usage.completionTokens - before))
        // Yielded even when empty: a heartbeat per step lets a waiting handler notice a client that left.
        job.continuation.yield(.events(events))
        if let reason = sequence.finishReason {
            metrics?.promptTokens.increment(by: Int64(sequence.usage.promptTokens))
            let seconds = Date().timeIntervalSince(job.started)
            if seconds > 0 { metrics?.tokensPerSecond.set(Double(sequence.usage.completionTokens) / seconds) }
            release(job, output: .finished(reason, sequence.usage))
        }
    }

    /// Frees the job's slot first, then ends its stream (so a client that sees the end finds the slot free).
    private func release(_ job: GenerationJob, output: SchedulerOutput?) {
        condition.lock()
        active.removeAll { $0 === job }
        slotBusy[job.slotIndex] = false
        metrics?.activeSequences.set(Double(active.count))
        condition.unlock()
        if let output { job.continuation.yield(output) }
        job.continuation.finish()
    }
}
