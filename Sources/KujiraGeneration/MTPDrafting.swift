import Foundation
import KujiraModels

/// Drafts for `Speculation.mtp` / `.auto` inside `TextSequence`: DeepSeek-V3's MTP module reads the main model's final
/// hidden state of each position with the token that followed it (entry p pairs hidden state p with token p + 1, at
/// RoPE position p + 1), and its output predicts the token after that. The main model's hidden states are kept until
/// the token after them is known, then fed to the module in batches; drafts beyond the first chain the module on its
/// own output, and those chained entries are dropped from its cache after each draft.
final class MTPDrafter {
    let stack: DecoderStack
    let mtp: MultiTokenPrediction
    /// The module's cache; entry i is position `firstPosition + i` (a reused prompt prefix has no hidden states).
    let cache: KVCache
    let firstPosition: Int
    /// Main-model hidden states of positions `firstPosition + cache.length ..< … + pendingRows`, not yet fed.
    private var pendingHidden: [Float] = []
    private(set) var pendingRows = 0
    /// Rows fed to the module at once while they accumulate without drafting (bounds the memory they hold).
    static let feedBatch = 64

    init(stack: DecoderStack, mtp: MultiTokenPrediction, startPosition: Int) {
        self.stack = stack
        self.mtp = mtp
        self.firstPosition = startPosition
        cache = KVCache(layout: [mtp.cacheStreams], positionOffset: startPosition + 1, precision: mtp.cachePrecision)
        pendingHidden.reserveCapacity(Self.feedBatch * mtp.hidden)
    }

    /// Keeps the main model's hidden states (rows, hidden) of the next `rows` positions.
    func record(_ hidden: UnsafeBufferPointer<Float>, rows: Int) {
        pendingHidden.append(contentsOf: UnsafeBufferPointer(rebasing: hidden[0..<(rows * mtp.hidden)]))
        pendingRows += rows
    }

    /// Feeds every pending row whose next token is known (`token(p)` for positions p < `knownTokens`); returns the
    /// module's output for the last row fed, or nil when nothing was pending.
    @discardableResult
    func feed(knownTokens: Int, token: (Int) -> Int) -> [Float]? {
        let start = firstPosition + cache.length
        let rows = min(pendingRows, knownTokens - 1 - start)
        guard rows > 0 else { return nil }
        let next = (0..<rows).map { token(start + $0 + 1) }
        let output = mtp.forward(mainHidden: Array(pendingHidden[0..<(rows * mtp.hidden)]), nextTokens: next, cache: cache)
        pendingHidden.removeFirst(rows * mtp.hidden)
        pendingRows -= rows
        return Array(output[((rows - 1) * mtp.hidden)..<(rows * mtp.hidden)])
    }

    /// Feeds what accumulated when it reaches `feedBatch` rows (steps that do not draft), all but the newest row, so
    /// the next draft still has a row to feed and an output to start from.
    func feedIfFull(knownTokens: Int, token: (Int) -> Int) {
        if pendingRows >= Self.feedBatch { feed(knownTokens: knownTokens - 1, token: token) }
    }

    /// Up to `count` greedy drafts of the tokens after the last known one, which sits at position `knownTokens - 1`
    /// (every earlier position's hidden state must have been recorded).
    func draft(count: Int, knownTokens: Int, token: (Int) -> Int) -> [Int] {
        guard count > 0 else { return [] }
        guard var output = feed(knownTokens: knownTokens, token: token) else { return [] }
        let committed = cache.length
        var drafts: [Int] = []
        while true {
            drafts.append(Sampler.argmax(mtp.logits(fromOutput: output, n: 1)))
            if drafts.count == count { break }
            output = mtp.forward(mainHidden: output, nextTokens: [drafts.last!], cache: cache)
        }
        cache.truncate(to: committed)
        return drafts
    }
}

/// Whether a sequence drafts on its next step, and how many tokens: the draft length adapts to acceptance (doubles
/// after a fully accepted draft, falls to one past the accepted count after a rejection); with `whenFaster` (the
/// `auto` default) drafting is also kept only while it measures faster per produced token than plain steps — a few
/// steps of each first, then the cheaper one, re-trying the other every `probeInterval` steps.
struct DraftingPolicy: Equatable {
    let maxDraft: Int
    let whenFaster: Bool
    private(set) var budget: Int
    /// Mean seconds per produced token of each kind of step (exponential average) and how many were measured.
    private(set) var draftingCost = 0.0, plainCost = 0.0
    private(set) var draftingSteps = 0, plainSteps = 0
    private var sinceProbe = 0

    static let warmupSteps = 4, probeInterval = 32, smoothing = 0.25

    init(maxDraft: Int, whenFaster: Bool, initialBudget: Int = 2) {
        self.maxDraft = maxDraft
        self.whenFaster = whenFaster
        budget = min(maxDraft, initialBudget)
    }

    /// True when the next step should draft (warming up, the two kinds alternate).
    mutating func shouldDraft() -> Bool {
        guard whenFaster else { return true }
        if draftingSteps < Self.warmupSteps || plainSteps < Self.warmupSteps { return draftingSteps <= plainSteps }
        let draftingWins = draftingCost < plainCost
        sinceProbe += 1
        if sinceProbe >= Self.probeInterval {
            sinceProbe = 0
            return !draftingWins
        }
        return draftingWins
    }

    /// Adapts the draft length: `accepted` of `drafted` agreed.
    mutating func recordAcceptance(accepted: Int, drafted: Int) {
        budget = accepted == drafted ? min(maxDraft, 2 * budget) : accepted + 1
    }

    /// A step's wall time and the tokens it produced (the first step of each kind only warms up: not averaged).
    mutating func recordTime(drafting: Bool, seconds: Double, tokens: Int) {
        guard whenFaster, tokens > 0 else { return }
        let cost = seconds / Double(tokens)
        func average(_ mean: inout Double, _ steps: inout Int) {
            mean = steps <= 1 ? cost : mean + Self.smoothing * (cost - mean)
            steps += 1
        }
        if drafting { average(&draftingCost, &draftingSteps) } else { average(&plainCost, &plainSteps) }
    }
}
