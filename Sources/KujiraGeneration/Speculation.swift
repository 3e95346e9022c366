/// Speculative decoding inside `TextSequence` (`run`, `chat`, `serve`, the `Kujira` library): a drafter proposes the next
/// few tokens, one forward pass over the pending token and the drafts gives a row of logits per position, and the rows
/// are consumed in order — each through the same penalties, masks and sampler as plain decoding — for as long as the
/// chosen token equals the draft. Every row consumed was computed on the true context, so the output is token for token
/// the output without speculation, greedy or sampled (the sampler draws once per consumed row, as it would anyway); only
/// the number of forward passes changes. The cache drops the rejected drafts (`KVCache.truncate`), so speculation needs
/// a cache that can keep a prefix.
public enum Speculation: Sendable, Equatable {
    /// One token per forward pass.
    case off
    /// Prompt-lookup drafting: the tokens that followed the latest earlier occurrence of the last `ngram` tokens (then of
    /// shorter suffixes, down to 2) in the prompt and output, at most `maxDraft` of them. Pays when the output repeats
    /// its context (summaries, quotes, code edits).
    case ngram(ngram: Int, maxDraft: Int)

    /// `--speculative ngram` defaults: suffixes of 3 tokens, drafts of up to 8.
    public static let defaultNgram = Speculation.ngram(ngram: 3, maxDraft: 8)

    /// Parses `off` or `ngram` (the CLI's `--speculative`).
    public init(flag: String, draftTokens: Int? = nil) throws {
        switch flag {
        case "off", "none": self = .off
        case "ngram":
            let draft = draftTokens ?? 8
            guard (1...64).contains(draft) else {
                throw GenerationError.invalidParameter(name: "draft tokens", detail: "must be in 1...64, got \(draft)")
            }
            self = .ngram(ngram: 3, maxDraft: draft)
        default:
            throw GenerationError.invalidParameter(name: "speculative", detail: "'\(flag)' is not one of off, ngram")
        }
    }
}

/// Prompt-lookup drafts (`Speculation.ngram`).
enum NgramDrafter {
    /// The tokens after the latest earlier occurrence of `history`'s last `ngram` (then shorter, ≥ 2) tokens, at most
    /// `maxDraft`; empty when no suffix recurs.
    static func draft(_ history: [Int], ngram: Int, maxDraft: Int) -> [Int] {
        draft(history, [], ngram: ngram, maxDraft: maxDraft)
    }

    /// `draft` of the history `first` followed by `second` (the prompt and the output), without joining them.
    static func draft(_ first: [Int], _ second: [Int], ngram: Int, maxDraft: Int) -> [Int] {
        let count = first.count + second.count
        @inline(__always) func at(_ i: Int) -> Int { i < first.count ? first[i] : second[i - first.count] }
        guard maxDraft > 0 else { return [] }
        var size = min(ngram, count - 1)
        while size >= 2 {
            let suffixStart = count - size
            var j = suffixStart - 1
            while j >= 0 {
                var k = 0
                while k < size && at(j + k) == at(suffixStart + k) { k += 1 }
                if k == size {
                    let from = j + size
                    return (from..<min(from + maxDraft, count)).map(at)
                }
                j -= 1
            }
            size -= 1
        }
        return []
    }
}
