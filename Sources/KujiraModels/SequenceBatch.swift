/// Which rows of a forward pass belong to which sequence: n consecutive tokens of one sequence (prefill, decode),
/// or one new token for each of several sequences (batched decoding), each at its own cache position.
///
/// Blocks that are position-wise (norms, projections, feed-forward) run on all rows at once; attention runs per
/// segment over that segment's cache only. Scratch comes from the first cache's workspace. Switching over the cases
/// does not allocate, so the single-sequence path stays allocation-free.
public enum SequenceBatch {
    /// All n rows belong to this cache's sequence, at positions `cache.length ..< cache.length + n`.
    case single(KVCache)
    /// Row b is one token of `caches[b]`'s sequence at position `caches[b].length` (caches distinct).
    case tokens([KVCache])

    /// Number of sequences (segments).
    @inline(__always)
    public var count: Int {
        switch self {
        case .single: return 1
        case .tokens(let caches): return caches.count
        }
    }

    /// The cache of segment `s`.
    @inline(__always)
    public func cache(_ s: Int) -> KVCache {
        switch self {
        case .single(let cache): return cache
        case .tokens(let caches): return caches[s]
        }
    }

    /// First row and row count of segment `s` in a pass of `n` rows.
    @inline(__always)
    public func rows(_ s: Int, n: Int) -> (first: Int, count: Int) {
        switch self {
        case .single: return (0, n)
        case .tokens: return (s, 1)
        }
    }

    /// Scratch for the whole pass: the first sequence's workspace.
    @inline(__always)
    public var workspace: ForwardWorkspace { cache(0).workspace }

    /// Where MoE layers record expert statistics: the sequence's `ExpertLoad` for a single sequence; not recorded for
    /// multi-sequence batches (statistics are a `kujira bench` feature of one sequence).
    @inline(__always)
    public var expertLoad: ExpertLoad? {
        switch self {
        case .single(let cache): return cache.expertLoad
        case .tokens: return nil
        }
    }
}
