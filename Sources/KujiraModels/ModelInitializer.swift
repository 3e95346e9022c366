import Foundation
import KujiraFormats
import KujiraTensor

/// Writes a randomly initialised model in Hugging Face layout (`config.json` + `model.safetensors`).
public enum ModelInitializer {
    /// Stored precision of the written weights.
    /// `fp8` is DeepSeek-V3's checkpoint format: 2-D projection weights in float8 e4m3fn with one F32 `weight_scale_inv`
    /// per 128×128 block (w = fp8 · scale_inv), everything else (embeddings, head, router, norms) in bf16, and a
    /// `quantization_config` in config.json.
    public enum StorageType: String, Sendable, CaseIterable { case f32, bf16, fp8 }

    /// FP8 block edge (`quantization_config.weight_block_size`), as DeepSeek-V3 ships.
    public static let fp8BlockSize = 128

    /// Creates `directory` with the config's architecture, weights ~ N(0, initializer_range), norms 1, biases 0.
    /// Deterministic for a seed: tensor i's normals continue the one SplitMix64 stream where tensor i − 1's stopped (two
    /// draws per value), so any slice of any tensor can be generated on its own. The safetensors file is streamed one
    /// tensor at a time (a full-size model never sits in memory) and, like config.json, written atomically.
    public static func write(config: ModelConfig, to directory: String, seed: UInt64, storage: StorageType = .f32,
                             progress: (Int, Int) -> Void = { _, _ in }) throws {
        let entries = try ParameterLayout.entries(for: config)
        let std = Float(try config.float("initializer_range", default: 0.02))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Each entry's first draw, and the tensors it becomes in the file.
        var drawsBefore: UInt64 = 0
        var sources: [String: (entry: ParameterLayout.Entry, firstDraw: UInt64)] = [:]
        var written: [SafeTensorsStreamWriter.Entry] = []
        for entry in entries {
            sources[entry.name] = (entry, drawsBefore)
            if case .normal = entry.initial { drawsBefore &+= 2 &* UInt64(entry.shape.reduce(1, *)) }
            if case .expertTable = entry.initial {
                written.append(.init(name: entry.name, dtype: .i64, shape: entry.shape))
            } else if storage == .fp8 && isFP8Projection(entry) {
                let grid = [(entry.shape[0] + fp8BlockSize - 1) / fp8BlockSize, (entry.shape[1] + fp8BlockSize - 1) / fp8BlockSize]
                written.append(.init(name: entry.name, dtype: .f8e4m3, shape: entry.shape))
                written.append(.init(name: entry.name + "_scale_inv", dtype: .f32, shape: grid))
            } else {
                written.append(.init(name: entry.name, dtype: storage == .f32 ? .f32 : .bf16, shape: entry.shape))
            }
        }
        let writer = try SafeTensorsStreamWriter(path: (directory as NSString).appendingPathComponent("model.safetensors"), entries: written,
                                                 metadata: ["format": "pt"])
        // An FP8 weight's scales come from the same quantization as its codes; they are kept until their entry, which
        // sorts right after the weight's own name.
        var pendingScales: [String: [UInt8]] = [:]
        var done = 0
        while let next = writer.nextEntry {
            if let scales = pendingScales.removeValue(forKey: next.name) {
                try writer.append(scales)
                continue
            }
            let (entry, firstDraw) = sources[next.name]!
            let values = values(of: entry, seed: seed, firstDraw: firstDraw, std: std)
            if next.dtype == .f8e4m3 {
                let (codes, scales, _) = FP8BlockQuantizer.quantize(values, rows: entry.shape[0], cols: entry.shape[1], block: fp8BlockSize)
                pendingScales[next.name + "_scale_inv"] = scales.withUnsafeBytes { Array($0) }
                try writer.append(codes)
            } else {
                try writer.append(bytes(of: next, from: entry, values: values))
            }
            done += 1
            progress(done, entries.count)
        }
        try writer.finish()
        var configValues = config.values
        if storage != .f32 { configValues["torch_dtype"] = .string("bfloat16") }
        if storage == .fp8 {
            configValues["quantization_config"] = .object([
                "activation_scheme": .string("dynamic"), "fmt": .string("e4m3"), "quant_method": .string("fp8"),
                "weight_block_size": .array([.integer(fp8BlockSize), .integer(fp8BlockSize)]),
            ])
        }
        try AtomicFile.write(JSONValue.object(configValues).serialized(), to: (directory as NSString).appendingPathComponent("config.json"))
    }

    /// An entry's initial values (empty for integer tables): normals from draw `firstDraw` of the seed's stream, split
    /// over the pool (each chunk jumps to its own draw: SplitMix64's state advances by a constant per draw).
    static func values(of entry: ParameterLayout.Entry, seed: UInt64, firstDraw: UInt64, std: Float) -> [Float] {
        let count = entry.shape.reduce(1, *)
        switch entry.initial {
        case .normal:
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBufferPointer { out in
                ThreadPool.shared.parallelFor(count, grain: 1 << 16) { range in
                    var random = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* (firstDraw &+ 2 &* UInt64(range.lowerBound)))
                    for i in range { out[i] = random.nextNormal() * std }
                }
            }
            return values
        case .ones: return [Float](repeating: 1, count: count)
        case .zeros: return [Float](repeating: 0, count: count)
        case .expertTable: return []
        }
    }

    /// The bytes of file tensor `tensor` made from `entry`'s `values`: I64 expert tables, BF16 or F32 (FP8 weights are
    /// quantized by `write`, which keeps their scales).
    static func bytes(of tensor: SafeTensorsStreamWriter.Entry, from entry: ParameterLayout.Entry, values: [Float]) -> [UInt8] {
        let count = entry.shape.reduce(1, *)
        if case let .expertTable(experts) = entry.initial {
            // Integer tables are written as they are (I64), whatever the storage type.
            let k = entry.shape.last ?? 1
            var bytes: [UInt8] = []
            bytes.reserveCapacity(8 * count)
            for i in 0..<count {
                let expert = Int64((i / k * k + i % k) % experts)
                withUnsafeBytes(of: expert.littleEndian) { bytes.append(contentsOf: $0) }
            }
            return bytes
        }
        switch tensor.dtype {
        case .bf16:
            var bytes = [UInt8](repeating: 0, count: count * 2)
            for (i, v) in values.enumerated() {
                let bits = FloatConversion.floatToBF16(v)
                bytes[2 * i] = UInt8(bits & 0xFF)
                bytes[2 * i + 1] = UInt8(bits >> 8)
            }
            return bytes
        default:
            return values.withUnsafeBytes { Array($0) }
        }
    }

    /// DeepSeek-V3 keeps embeddings, the LM head and the router gate in bf16; every other matrix is FP8.
    static func isFP8Projection(_ entry: ParameterLayout.Entry) -> Bool {
        entry.shape.count == 2 && entry.name.hasSuffix(".weight") && !entry.name.hasSuffix("embed_tokens.weight")
            && !entry.name.hasSuffix("lm_head.weight") && !entry.name.hasSuffix("mlp.gate.weight")
    }
}

/// Float → float8 e4m3fn with per-block scales (DeepSeek-V3's `weight_scale_inv`: max |w| of the block / 448).
public enum FP8BlockQuantizer {
    /// Positive finite e4m3fn values in increasing order with their codes (0x00 ... 0x7E; 0x7F is NaN).
    static let positive: [(value: Float, code: UInt8)] = (0..<0x7F).map { (FloatConversion.decodeF8E4M3(UInt8($0)), UInt8($0)) }

    /// The e4m3fn code nearest to x (saturating at ±448).
    public static func encode(_ x: Float) -> UInt8 {
        let magnitude = min(abs(x), 448)
        var low = 0, high = positive.count - 1
        while high - low > 1 {
            let mid = (low + high) / 2
            if positive[mid].value <= magnitude { low = mid } else { high = mid }
        }
        let code = magnitude - positive[low].value <= positive[high].value - magnitude ? positive[low].code : positive[high].code
        return x < 0 && code != 0 ? code | 0x80 : code
    }

    /// Codes (rows·cols bytes), scales and the scale grid [ceil(rows/block), ceil(cols/block)] of a row-major matrix.
    public static func quantize(_ w: [Float], rows: Int, cols: Int, block: Int) -> (codes: [UInt8], scales: [Float], grid: [Int]) {
        let grid = [(rows + block - 1) / block, (cols + block - 1) / block]
        var scales = [Float](repeating: 0, count: grid[0] * grid[1])
        for r in 0..<rows {
            for c in 0..<cols {
                let s = r / block * grid[1] + c / block
                scales[s] = max(scales[s], abs(w[r * cols + c]))
            }
        }
        for i in scales.indices { scales[i] = scales[i] > 0 ? scales[i] / 448 : 1 }
        var codes = [UInt8](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols { codes[r * cols + c] = encode(w[r * cols + c] / scales[r / block * grid[1] + c / block]) }
        }
        return (codes, scales, grid)
    }
}
