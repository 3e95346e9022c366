import KujiraFormats
import KujiraTensor

/// DeepSeek-V3's multi-token-prediction module (depth 1), stored as layer `num_hidden_layers`.
///
/// For main-model hidden state hᵢ (after the final norm) and the next token tᵢ₊₁:
/// h'ᵢ = block(eh_proj([enorm(embed(tᵢ₊₁)) ; hnorm(hᵢ)])), causal over i at RoPE position i + 1,
/// and logits = lm_head(shared_head.norm(h'ᵢ)) predict tᵢ₊₂.
public struct MultiTokenPrediction: Sendable {
    public let embedding: LinearWeight
    public let enorm: [Float]
    public let hnorm: [Float]
    /// (hidden, 2·hidden): input is [enorm(embed) ; hnorm(h)].
    public let ehProj: LinearWeight
    public let block: DecoderLayer
    public let sharedHeadNorm: [Float]
    public let head: LinearWeight
    public let eps: Float
    /// `model.layers.<num_hidden_layers>`; and the names of the embedding and head it reads (its own copies, or the
    /// main model's), under which their gradients are filed.
    public let prefix: String, embeddingName: String, headName: String
    /// The module's cache streams (its block's) and its storage (the main model's `--kv-bits`).
    public let cacheStreams: [CacheStreamSpec], cachePrecision: KVCachePrecision

    /// Tensor names under the module's prefix (`model.layers.<num_hidden_layers>`).
    public enum Names {
        public static let enorm = "enorm.weight", hnorm = "hnorm.weight", ehProj = "eh_proj.weight", sharedHeadNorm = "shared_head.norm.weight"
        public static let embedding = "embed_tokens.weight", head = "shared_head.head.weight"
    }

    /// The module's own parameters under `prefix` (its decoder block's come from the architecture).
    public static func parameters(_ prefix: String, hidden h: Int) -> [ParameterLayout.Entry] {
        [.init("\(prefix).\(Names.enorm)", [h], .ones), .init("\(prefix).\(Names.hnorm)", [h], .ones),
         .init("\(prefix).\(Names.ehProj)", [h, 2 * h]), .init("\(prefix).\(Names.sharedHeadNorm)", [h], .ones)]
    }

    public var hidden: Int { enorm.count }

    /// Loads `model.layers.<index>.*`; the module's own `embed_tokens` / `shared_head.head` copies are used when
    /// present, else the main model's (they are shared in DeepSeek-V3).
    public init(weights: any WeightStore, index: Int, block: DecoderLayer, mainEmbedding: LinearWeight, mainHead: LinearWeight,
                hidden: Int, eps: Float, blockSize: [Int]?, cacheStreams: [CacheStreamSpec], cachePrecision: KVCachePrecision = .float32) throws {
        let prefix = "model.layers.\(index)"
        self.prefix = prefix
        enorm = try weights.floats("\(prefix).\(Names.enorm)", shape: [hidden])
        hnorm = try weights.floats("\(prefix).\(Names.hnorm)", shape: [hidden])
        ehProj = try weights.linear("\(prefix).\(Names.ehProj)", rows: hidden, cols: 2 * hidden, blockSize: blockSize)
        sharedHeadNorm = try weights.floats("\(prefix).\(Names.sharedHeadNorm)", shape: [hidden])
        if weights.contains("\(prefix).\(Names.embedding)") {
            embeddingName = "\(prefix).\(Names.embedding)"
            embedding = try weights.linear(embeddingName, rows: mainEmbedding.rows, cols: hidden, blockSize: blockSize)
        } else {
            embeddingName = DecoderStack.embeddingName
            embedding = mainEmbedding
        }
        if weights.contains("\(prefix).\(Names.head)") {
            headName = "\(prefix).\(Names.head)"
            head = try weights.linear(headName, rows: mainHead.rows, cols: hidden, blockSize: blockSize)
        } else {
            let tied = mainHead.data.bytes.baseAddress == mainEmbedding.data.bytes.baseAddress
            headName = tied ? DecoderStack.embeddingName : DecoderStack.lmHeadName
            head = mainHead
        }
        self.block = block
        self.eps = eps
        self.cacheStreams = cacheStreams
        self.cachePrecision = cachePrecision
    }

    /// The module's own weights (norms, `eh_proj`, its block), not the embedding and head it shares with the main model.
    public var parameterCount: Int { enorm.count + hnorm.count + ehProj.rows * ehProj.cols + sharedHeadNorm.count + block.parameterCount }

    /// A cache for the module's one block; entry i sits at RoPE position i + 1.
    public func makeCache() -> KVCache {
        KVCache(layout: [cacheStreams], positionOffset: 1, precision: cachePrecision)
    }

    /// Module outputs h' (n, hidden) for pairs (mainHidden[i], nextTokens[i]), appended to `cache`.
    public func forward(mainHidden: [Float], nextTokens: [Int], cache: KVCache) -> [Float] {
        let n = nextTokens.count
        var embedded = [Float](repeating: 0, count: n * hidden)
        embedded.withUnsafeMutableBufferPointer { buffer in
            for (t, token) in nextTokens.enumerated() {
                embedding.decodeRow(token, into: UnsafeMutableBufferPointer(rebasing: buffer[(t * hidden)..<((t + 1) * hidden)]))
            }
        }
        let e = Elementwise.rmsNorm(embedded, weight: enorm, eps: eps)
        let h = Elementwise.rmsNorm(mainHidden, weight: hnorm, eps: eps)
        var joined = [Float](repeating: 0, count: n * 2 * hidden)
        for t in 0..<n {
            for i in 0..<hidden {
                joined[t * 2 * hidden + i] = e[t * hidden + i]
                joined[t * 2 * hidden + hidden + i] = h[t * hidden + i]
            }
        }
        var x = Linear.forward(ehProj, joined, n: n)
        cache.reserve(cache.length + n)
        block.forward(&x, n: n, cache: cache, layer: 0)
        cache.advance(by: n)
        return x
    }

    /// Logits (n, vocab) from module outputs.
    public func logits(fromOutput x: [Float], n: Int) -> [Float] {
        Linear.forward(head, Elementwise.rmsNorm(x, weight: sharedHeadNorm, eps: eps), n: n)
    }
}
