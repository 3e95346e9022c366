import Foundation
import KujiraModels
import KujiraTensor

/// Weight bytes one decoded token reads, for `kujira bench`'s roofline: the model files' bytes minus what a token does
/// not touch — an untied embedding matrix (one row is read), the routed experts it is not sent to (all but top-k of
/// each MoE layer, on average) and a multi-token-prediction module (its norms and biases counted at its projection's
/// bytes per value). Norms and metadata stay in (a fraction of a percent).
struct DecodeTraffic {
    var bytesPerToken = 0

    init(model: any LanguageModel, fileBytes: Int) {
        bytesPerToken = fileBytes
        guard let stacked = model as? any DecoderStackModel else { return }
        let stack = stacked.stack
        if stack.lmHead.data.bytes.baseAddress != stack.embedding.data.bytes.baseAddress {
            bytesPerToken -= stack.embedding.data.bytes.count - stack.embedding.data.bytes.count / max(stack.embedding.rows, 1)
        }
        for layer in stack.layers {
            guard let moe = layer.mixtureOfExperts, !moe.experts.isEmpty else { continue }
            let expertBytes = moe.experts.reduce(0) { $0 + $1.weightBytes }
            let k = min(moe.router.settings.topK, moe.experts.count)
            bytesPerToken -= expertBytes - expertBytes * k / moe.experts.count
        }
        if let mtp = stacked.multiTokenPrediction {
            // Its own weights, at the average bytes per parameter of its input projection.
            let bytesPerParameter = Double(mtp.ehProj.data.bytes.count) / Double(max(mtp.ehProj.rows * mtp.ehProj.cols, 1))
            bytesPerToken -= Int(Double(mtp.parameterCount) * bytesPerParameter)
            // And its own copies of the embedding and head, when it has them.
            if mtp.embedding.data.bytes.baseAddress != stack.embedding.data.bytes.baseAddress { bytesPerToken -= mtp.embedding.data.bytes.count }
            if mtp.head.data.bytes.baseAddress != stack.lmHead.data.bytes.baseAddress,
               mtp.head.data.bytes.baseAddress != mtp.embedding.data.bytes.baseAddress { bytesPerToken -= mtp.head.data.bytes.count }
        }
        bytesPerToken = max(bytesPerToken, 0)
    }
}

/// A STREAM-like read loop: the machine's memory read bandwidth on the pool's active threads.
enum MemoryBandwidth {
    /// GB/s reading a 256 MB buffer with 64-byte SIMD loads, split over the pool, for about `seconds`.
    static func read(pool: ThreadPool, seconds: Double) -> Double {
        let count = 1 << 28
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        defer { buffer.deallocate() }
        memset(buffer, 1, count)
        let chunks = count / 64
        let perCall = BenchData.time(seconds: seconds) {
            pool.parallelFor(chunks, grain: 4096) { range in
                var acc = SIMD16<Float>()
                for c in range { acc += buffer.load(fromByteOffset: c * 64, as: SIMD16<Float>.self) }
                if acc.sum() == 1 { print("") }
            }
        }
        return Double(count) / perCall / 1e9
    }
}
