/// A packed training sequence: whole examples back to back, then padding.
public struct PackedSequence: Sendable, Equatable {
    public var tokens: [Int]
    /// targets[t] = tokens[t+1] when that token is part of a reply of the same example, else −1.
    public var targets: [Int]
}

/// Packs examples into fixed-length sequences and orders them for training.
///
/// Examples keep the file's order inside the packing and are never split; a sequence is closed when the next example
/// does not fit, and padded with `padId` (padding has no targets). Attention is causal over the whole packed sequence
/// (as in TRL's default packing): an example can see the ones before it in its sequence, but no target crosses an
/// example boundary. Each epoch visits every sequence once in an order drawn from the seed and the epoch number, so
/// the data of any step is a function of (seed, step) and a resumed run sees exactly what an uninterrupted one would.
public struct SFTSchedule: Sendable {
    public let sequences: [PackedSequence]
    public let length: Int
    public let seed: UInt64

    public init(examples: [SFTExample], length: Int, padId: Int, seed: UInt64) {
        self.length = length
        self.seed = seed
        sequences = Self.pack(examples, length: length, padId: padId)
    }

    /// Whole examples back to back into sequences of `length` tokens.
    public static func pack(_ examples: [SFTExample], length: Int, padId: Int) -> [PackedSequence] {
        var result: [PackedSequence] = []
        var tokens: [Int] = [], targets: [Int] = []
        func close() {
            guard !tokens.isEmpty else { return }
            let pad = length - tokens.count
            result.append(PackedSequence(tokens: tokens + Array(repeating: padId, count: pad), targets: targets + Array(repeating: -1, count: pad)))
            tokens = []
            targets = []
        }
        for example in examples {
            precondition(example.tokens.count <= length, "an example longer than the sequence reached packing")
            if tokens.count + example.tokens.count > length { close() }
            for t in example.tokens.indices {
                tokens.append(example.tokens[t])
                targets.append(t + 1 < example.tokens.count && example.trained[t + 1] ? example.tokens[t + 1] : -1)
            }
        }
        close()
        return result
    }

    /// The order of the sequences in `epoch` (a seeded Fisher–Yates shuffle).
    public func order(epoch: Int) -> [Int] {
        var random = TrainingRandom(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var order = Array(sequences.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
        return order
    }

    /// The `count` sequences starting at position `start` of the endless stream epoch 0, epoch 1, ….
    public func batch(start: Int, count: Int) -> [PackedSequence] {
        var result: [PackedSequence] = []
        var cachedEpoch = -1, cachedOrder: [Int] = []
        for g in start..<(start + count) {
            let epoch = g / sequences.count
            if epoch != cachedEpoch { cachedOrder = order(epoch: epoch); cachedEpoch = epoch }
            result.append(sequences[cachedOrder[g % sequences.count]])
        }
        return result
    }

    /// Tokens with a target over all sequences.
    public var targetTokens: Int { sequences.reduce(0) { $0 + $1.targets.filter { $0 >= 0 }.count } }
}
