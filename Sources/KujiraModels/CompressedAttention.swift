import Foundation
import KujiraFormats
import KujiraTensor

/// DeepSeek-V4's attention: shared-KV multi-query attention (one `head_dim` row per token is both key and value) over
/// a sliding window of recent tokens, plus — in heavily compressed (HCA) and compressed sparse (CSA) layers — the
/// compressed entries of every closed window (HCA: all of them; CSA: the `index_topk` its lightning indexer picks).
/// Queries come through q-LoRA and a per-head RMSNorm; the trailing `rope` values of queries, keys and entries are
/// rotated (interleaved pairs), and the output is rotated back at the query's position. A learned per-head sink joins
/// the softmax's denominator. The output projection is grouped and low-rank: each group of heads → `o_lora_rank`, then
/// one mixing projection.
///
/// Cache streams: 0 = the window ring (`sliding_window` rows), then the compressor's (`KVCompressor`), then the
/// indexer's.
public struct CompressedAttention: TokenMixer {
    public let qA: LinearWeight, qANorm: [Float], qB: LinearWeight
    public let kvProj: LinearWeight, kvNorm: [Float]
    /// `o_a_proj` sliced per group (rank, heads·headDim / groups) and `o_b_proj` (hidden, groups·rank).
    public let outputGroups: [LinearWeight], oB: LinearWeight
    public let sinks: [Float]
    public let heads: Int, headDim: Int, window: Int, eps: Float
    public let rope: RotaryEmbedding
    public let compressor: KVCompressor?
    public let indexer: CompressedIndexer?

    /// Tensor names under the block's prefix (`…self_attn`).
    public enum Names {
        public static let qA = "q_a_proj.weight", qANorm = "q_a_norm.weight", qB = "q_b_proj.weight", kv = "kv_proj.weight"
        public static let kvNorm = "kv_norm.weight", oA = "o_a_proj.weight", oB = "o_b_proj.weight", sinks = "sinks"
        public static let compressor = "compressor", indexer = "compressor.indexer"
    }

    public init(weights: any WeightStore, prefix: String, hidden: Int, heads: Int, headDim: Int, qLoraRank: Int, groups: Int, outputRank: Int,
                window: Int, eps: Float, rope: RotaryEmbedding, compressor: KVCompressor?, indexer: CompressedIndexer?, blockSize: [Int]?) throws {
        qA = try weights.linear("\(prefix).\(Names.qA)", rows: qLoraRank, cols: hidden, blockSize: blockSize)
        qANorm = try weights.floats("\(prefix).\(Names.qANorm)", shape: [qLoraRank])
        qB = try weights.linear("\(prefix).\(Names.qB)", rows: heads * headDim, cols: qLoraRank, blockSize: blockSize)
        kvProj = try weights.linear("\(prefix).\(Names.kv)", rows: headDim, cols: hidden, blockSize: blockSize)
        kvNorm = try weights.floats("\(prefix).\(Names.kvNorm)", shape: [headDim])
        var oA = try weights.linear("\(prefix).\(Names.oA)", rows: groups * outputRank, cols: heads * headDim / groups, blockSize: blockSize)
        if let scales = oA.blockScales, outputRank % scales.blockRows != 0 {
            // The groups' row slices would split FP8 scale blocks: such a rank (small test models) is read as float.
            oA = LinearWeight(data: .owned(oA.toFloatArray(), shape: [oA.rows, oA.cols]))
        }
        outputGroups = (0..<groups).map { oA.rows(($0 * outputRank)..<(($0 + 1) * outputRank)) }
        oB = try weights.linear("\(prefix).\(Names.oB)", rows: hidden, cols: groups * outputRank, blockSize: blockSize)
        sinks = try weights.floats("\(prefix).\(Names.sinks)", shape: [heads])
        self.heads = heads
        self.headDim = headDim
        self.window = window
        self.eps = eps
        self.rope = rope
        self.compressor = compressor
        self.indexer = indexer
    }

    /// The block's own parameters under `prefix` (compressor and indexer are listed by their blocks).
    public static func parameters(_ prefix: String, hidden: Int, heads: Int, headDim: Int, qLoraRank: Int, groups: Int,
                                  outputRank: Int) -> [ParameterLayout.Entry] {
        [.init("\(prefix).\(Names.qA)", [qLoraRank, hidden]), .init("\(prefix).\(Names.qANorm)", [qLoraRank], .ones),
         .init("\(prefix).\(Names.qB)", [heads * headDim, qLoraRank]), .init("\(prefix).\(Names.kv)", [headDim, hidden]),
         .init("\(prefix).\(Names.kvNorm)", [headDim], .ones), .init("\(prefix).\(Names.oA)", [groups * outputRank, heads * headDim / groups]),
         .init("\(prefix).\(Names.oB)", [hidden, groups * outputRank]), .init("\(prefix).\(Names.sinks)", [heads], .zeros)]
    }

    public var cacheRowWidth: Int { headDim }
    public var outputWidth: Int { oB.rows }

    public var parameterCount: Int {
        [qA, qB, kvProj, oB].reduce(0) { $0 + $1.rows * $1.cols } + outputGroups.reduce(0) { $0 + $1.rows * $1.cols }
            + qANorm.count + kvNorm.count + sinks.count + (compressor?.parameterCount ?? 0) + (indexer?.parameterCount ?? 0)
    }

    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int, into result: UnsafeMutableBufferPointer<Float>) {
        let workspace = batch.workspace, d = headDim, qWidth = heads * d, r = rope.dim
        // Queries: q-LoRA, per-head RMSNorm, RoPE on each head's trailing values; the shared key/value row likewise.
        let qResidual = workspace.buffer(.queryLatent, n * qA.rows), q = workspace.buffer(.query, n * qWidth), kv = workspace.buffer(.key, n * d)
        Linear.forward(qA, x, n: n, into: qResidual)
        qANorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(qResidual), weight: $0, eps: eps, n: n, into: qResidual) }
        Linear.forward(qB, UnsafeBufferPointer(qResidual), n: n, into: q)
        Elementwise.rmsNormUnweighted(q.baseAddress!, width: d, rows: n * heads, eps: eps)
        Linear.forward(kvProj, x, n: n, into: kv)
        kvNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(kv), weight: $0, eps: eps, n: n, into: kv) }
        let table = workspace.buffer(.ropeTable, r)
        for s in 0..<batch.count {
            let cache = batch.cache(s), (first, m) = batch.rows(s, n: n)
            for t in first..<(first + m) {
                rope.angles(position: cache.length + t - first, into: table)
                rope.rotate(q.baseAddress! + t * qWidth + d - r, count: heads, stride: d, table: UnsafeBufferPointer(table))
                rope.rotate(kv.baseAddress! + t * d + d - r, count: 1, stride: d, table: UnsafeBufferPointer(table))
            }
        }
        // Compressors see every row once; each sequence closes its own windows.
        var compressed: (kv: UnsafeMutablePointer<Float>, gate: UnsafeMutablePointer<Float>)?
        var indexed: (kv: UnsafeMutablePointer<Float>, gate: UnsafeMutablePointer<Float>)?
        if let c = compressor { compressed = project(c, x, n: n, workspace: workspace, kvSlot: .compressorKV, gateSlot: .compressorGate) }
        if let c = indexer?.compressor { indexed = project(c, x, n: n, workspace: workspace, kvSlot: .indexerKV, gateSlot: .indexerGate) }
        let out = workspace.buffer(.attention, n * qWidth)
        for s in 0..<batch.count {
            let cache = batch.cache(s), (first, m) = batch.rows(s, n: n), start = cache.length
            if let c = compressor, let p = compressed {
                c.absorb(kv: p.kv, gate: p.gate, first: first, m: m, start: start, cache: cache, layer: layer, workspace: workspace)
            }
            if let i = indexer, let p = indexed {
                i.compressor.absorb(kv: p.kv, gate: p.gate, first: first, m: m, start: start, cache: cache, layer: layer, workspace: workspace)
            }
            attend(q: q.baseAddress!, kv: kv.baseAddress!, x: x, qResidual: UnsafeBufferPointer(qResidual), n: n, first: first, m: m,
                   start: start, cache: cache, layer: layer, out: out.baseAddress!, workspace: workspace)
            // The window ring keeps the last `window` rows (row of position p at p mod window).
            let ring = cache.rows(layer: layer, stream: 0)
            for t in max(first, first + m - window)..<(first + m) { ring.write(kv.baseAddress! + t * d, at: (start + t - first) % window) }
        }
        // Grouped low-rank output: each group of heads through its own slice of o_a, then o_b mixes the groups.
        let groups = outputGroups.count, rank = outputGroups[0].rows
        let grouped = workspace.buffer(.groupedOutput, n * groups * rank)
        LatentProjections.projectPerHead(UnsafeBufferPointer(out), n: n, headStride: qWidth / groups, weights: outputGroups, into: grouped,
                                         workspace: workspace)
        Linear.forward(oB, UnsafeBufferPointer(grouped), n: n, into: result)
    }

    private func project(_ c: KVCompressor, _ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace,
                         kvSlot: ForwardWorkspace.Slot, gateSlot: ForwardWorkspace.Slot) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let kv = workspace.buffer(kvSlot, n * c.kvProj.rows), gate = workspace.buffer(gateSlot, n * c.gateProj.rows)
        Linear.forward(c.kvProj, x, n: n, into: kv)
        Linear.forward(c.gateProj, x, n: n, into: gate)
        return (kv.baseAddress!, gate.baseAddress!)
    }

    /// Attention of rows `first ..< first + m` (one sequence, positions from `start`) over their window and visible
    /// compressed entries, into `out` (n, heads·headDim), un-rotated.
    private func attend(q: UnsafeMutablePointer<Float>, kv: UnsafeMutablePointer<Float>, x: UnsafeBufferPointer<Float>,
                        qResidual: UnsafeBufferPointer<Float>, n: Int, first: Int, m: Int, start: Int, cache: KVCache, layer: Int,
                        out: UnsafeMutablePointer<Float>, workspace: ForwardWorkspace) {
        let d = headDim, qWidth = heads * d, scale = 1 / Float(d).squareRoot()
        let ring = cache.rows(layer: layer, stream: 0).view
        let entries = compressor.map { cache.rows(layer: layer, stream: $0.entries) }
        let entryCount = entries?.count ?? 0, entryView = entries?.view
        // CSA: each row's selected entries.
        var selected: UnsafeMutablePointer<Int>?, counts: UnsafeMutablePointer<Int>?
        if let indexer {
            let keyRows = cache.rows(layer: layer, stream: indexer.compressor.entries)
            let (iq, iw) = indexer.queries(x: UnsafeBufferPointer(rebasing: x[(first * x.count / n)..<((first + m) * x.count / n)]),
                                           qResidual: UnsafeBufferPointer(rebasing: qResidual[(first * qResidual.count / n)..<((first + m) * qResidual.count / n)]),
                                           n: m, positions: { start + $0 }, workspace: workspace)
            let chosen = workspace.ints(.indexerSelected, m * indexer.topK), howMany = workspace.ints(.indexerCounts, m)
            for t in 0..<m {
                howMany[t] = indexer.select(query: iq.baseAddress! + t * indexer.heads * indexer.headDim, weights: iw.baseAddress! + t * indexer.heads,
                                            position: start + t, keys: keyRows.count, view: keyRows.view,
                                            into: chosen.baseAddress! + t * indexer.topK, workspace: workspace)
            }
            selected = chosen.baseAddress!
            counts = howMany.baseAddress!
        }
        let scores = workspace.buffer(.scores, window + max(entryCount, 1) + 1).baseAddress!
        let table = workspace.buffer(.ropeTable, rope.dim)
        for t in 0..<m {
            let position = start + t, row = first + t
            let low = max(0, position - window + 1)
            let windowKeys = position - low + 1
            // Entries this row sees: HCA every closed window, CSA the indexer's picks.
            let visibleEntries: Int
            if let compressor {
                visibleEntries = indexer == nil ? min((position + 1) / compressor.rate, entryCount) : counts![t]
            } else {
                visibleEntries = 0
            }
            @inline(__always) func key(_ j: Int) -> UnsafePointer<Float>? {
                let p = low + j
                return p >= start ? UnsafePointer(kv + (first + p - start) * d) : nil
            }
            for h in 0..<heads {
                let qh = q + row * qWidth + h * d, oh = out + row * qWidth + h * d
                var maximum = sinks[h]
                for j in 0..<windowKeys {
                    let p = low + j
                    let s: Float
                    if let k = key(j) {
                        s = Linear.dot(UnsafeBufferPointer(start: qh, count: d), UnsafeBufferPointer(start: k, count: d))
                    } else {
                        s = ring.dot(qh, position: p % window, offset: 0, count: d)
                    }
                    scores[j] = s * scale
                    maximum = max(maximum, scores[j])
                }
                for e in 0..<visibleEntries {
                    let index = selected.map { $0[t * indexer!.topK + e] } ?? e
                    scores[windowKeys + e] = entryView!.dot(qh, position: index, offset: 0, count: d) * scale
                    maximum = max(maximum, scores[windowKeys + e])
                }
                let total = windowKeys + visibleEntries
                var sum = exp(sinks[h] - maximum)
                for j in 0..<total { scores[j] = exp(scores[j] - maximum); sum += scores[j] }
                let inverse = 1 / sum
                oh.update(repeating: 0, count: d)
                for j in 0..<windowKeys {
                    let p = low + j, w = scores[j] * inverse
                    if let k = key(j) {
                        Elementwise.addScaled(UnsafeBufferPointer(start: k, count: d), w, into: UnsafeMutableBufferPointer(start: oh, count: d))
                    } else {
                        ring.addScaled(position: p % window, offset: 0, count: d, weight: w, into: oh)
                    }
                }
                for e in 0..<visibleEntries {
                    let index = selected.map { $0[t * indexer!.topK + e] } ?? e
                    entryView!.addScaled(position: index, offset: 0, count: d, weight: scores[windowKeys + e] * inverse, into: oh)
                }
            }
            // Values carry their keys' rotation: rotate the output back at the query's position.
            rope.angles(position: position, into: table)
            rope.rotate(out + row * qWidth + d - rope.dim, count: heads, stride: d, table: UnsafeBufferPointer(table), inverse: true)
        }
    }
}

extension ForwardWorkspace.Slot {
    /// Compressed attention: compressor and indexer-compressor projections, the grouped output.
    public static let compressorKV = Self("compressorKV"), compressorGate = Self("compressorGate")
    public static let indexerKV = Self("indexerKV"), indexerGate = Self("indexerGate"), groupedOutput = Self("groupedOutput")
}
