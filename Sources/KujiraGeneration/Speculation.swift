import KujiraModels

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
    /// Drafting with the model's multi-token-prediction module (DeepSeek-V3's MTP head), up to `maxDraft` tokens
    /// chained; an error on a model without one.
    case mtp(maxDraft: Int)
    /// Drafting with a smaller model that shares the tokenizer (`GenerationOptions.draftModel`, `--draft-model`): it
    /// decodes up to `maxDraft` tokens greedily from its own cache of the prompt and output.
    case draft(maxDraft: Int)
    /// `mtp` on models with an MTP module, kept only while it measures faster per token than plain steps
    /// (`DraftingPolicy`); nothing on other models. The default of `run`, `chat` and `serve`.
    case auto(maxDraft: Int)

    /// `--speculative ngram` defaults: suffixes of 3 tokens, drafts of up to 8.
    public static let defaultNgram = Speculation.ngram(ngram: 3, maxDraft: 8)

    /// `--speculative auto` defaults: one MTP draft per step when that pays (the module is trained to predict one token
    /// further; chained past that it agrees far less often: on the embedded model 15 of 15 drafts accepted at 1, 17 of
    /// 29 at up to 3).
    public static let defaultAuto = Speculation.auto(maxDraft: 1)

    /// Parses `auto`, `mtp`, `ngram`, `draft` or `off` (the CLI's `--speculative`); `draftTokens` defaults to 8 for
    /// n-grams and draft models, 1 for MTP.
    public init(flag: String, draftTokens: Int? = nil) throws {
        func draft(_ fallback: Int) throws -> Int {
            let draft = draftTokens ?? fallback
            guard (1...64).contains(draft) else {
                throw GenerationError.invalidParameter(name: "draft tokens", detail: "must be in 1...64, got \(draft)")
            }
            return draft
        }
        switch flag {
        case "off", "none": self = .off
        case "ngram": self = .ngram(ngram: 3, maxDraft: try draft(8))
        case "mtp": self = .mtp(maxDraft: try draft(1))
        case "auto": self = .auto(maxDraft: try draft(1))
        case "draft": self = .draft(maxDraft: try draft(8))
        default:
            throw GenerationError.invalidParameter(name: "speculative", detail: "'\(flag)' is not one of auto, mtp, ngram, draft, off")
        }
    }

    /// How a sequence starts drafting under this setting (nil: it never drafts).
    var initialPolicy: DraftingPolicy? {
        switch self {
        case .off: return nil
        case let .ngram(_, maxDraft), let .draft(maxDraft): return DraftingPolicy(maxDraft: maxDraft, whenFaster: false)
        case let .mtp(maxDraft): return DraftingPolicy(maxDraft: maxDraft, whenFaster: false, initialBudget: 1)
        case let .auto(maxDraft): return DraftingPolicy(maxDraft: maxDraft, whenFaster: true, initialBudget: 1)
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

/// Drafts of a smaller model with the same tokenizer (`Speculation.draft`), one per sequence: its cache holds the prompt
/// and output it has seen (`cachedTokens`); each draft first brings it up to date — keeping the longest prefix that still
/// agrees, so the drafts it ran last time that were accepted are not run again — then decodes greedily.
final class ModelDrafter {
    let model: any LanguageModel
    let cache: KVCache
    private var cachedTokens: [Int] = []

    init(model: any LanguageModel) {
        self.model = model
        cache = model.makeCache()
    }

    /// Up to `count` greedy tokens after `first` + `second` (the prompt and the output so far); empty when the draft
    /// model's context is full or a token is outside its vocabulary.
    func draft(_ first: [Int], _ second: [Int], count: Int) throws -> [Int] {
        let known = first.count + second.count
        guard count > 0, cache.canKeepPrefix, known + count <= model.maxPositions else { return [] }
        @inline(__always) func at(_ i: Int) -> Int { i < first.count ? first[i] : second[i - first.count] }
        var keep = 0
        while keep < cachedTokens.count && keep < known - 1 && cachedTokens[keep] == at(keep) { keep += 1 }
        cache.truncate(to: keep)
        cachedTokens.removeSubrange(keep...)
        let missing = (keep..<known).map(at)
        guard missing.allSatisfy({ $0 < model.vocabSize }) else { return [] }
        var next = Sampler.argmax(try model.forward(missing, cache: cache, allLogits: false))
        cachedTokens += missing
        var drafts: [Int] = []
        while true {
            drafts.append(next)
            if drafts.count == count { break }
            next = Sampler.argmax(try model.decode(next, cache: cache))
            cachedTokens.append(drafts.last!)
        }
        return drafts
    }
}
