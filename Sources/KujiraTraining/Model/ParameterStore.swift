import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor

/// Errors building, loading or saving training parameters; each names the tensor or file.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case unsupported(String)
    case missingParameter(String)
    case invalidInput(String)
    case badCheckpoint(path: String, detail: String)

    public var description: String {
        switch self {
        case let .unsupported(what): return "training does not support \(what)"
        case let .missingParameter(name): return "no parameter named '\(name)'"
        case let .invalidInput(detail): return detail
        case let .badCheckpoint(path, detail): return "\(path): \(detail)"
        }
    }
}

/// Every parameter of a model in one flat float32 buffer (and its gradient in another), keyed by the HF tensor name.
///
/// One flat buffer makes the optimizer, clipping and gradient zeroing single loops; the model's blocks read the values
/// in place (the store is their `WeightStore`) and file gradients by name (it is their `GradientSink`).
public final class ParameterStore: @unchecked Sendable {
    /// What a tensor is, which decides its initialisation, weight decay and whether it is trained.
    public enum Kind: String, Sendable, Codable {
        /// A matrix or stack of matrices (normal(0, σ) init, weight decay).
        case matrix
        /// A norm scale (ones, no decay).
        case norm
        /// `e_score_correction_bias`: zeros, updated by the balancing rule, never by gradients.
        case balanceBias
        /// A bias vector (zeros, no decay).
        case bias
    }

    /// One named tensor in the flat buffers.
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let kind: Kind
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        public var trainable: Bool { kind != .balanceBias }
    }

    public let entries: [Entry]
    private let index: [String: Int]
    public let count: Int
    public let values: UnsafeMutablePointer<Float>
    public let grads: UnsafeMutablePointer<Float>
    /// Tensors that get no gradient (the base weights under LoRA).
    public var frozen: Set<String> = []

    public init(layout: [(name: String, shape: [Int], kind: Kind)]) {
        var entries: [Entry] = [], index: [String: Int] = [:], offset = 0
        for item in layout {
            index[item.name] = entries.count
            entries.append(Entry(name: item.name, shape: item.shape, kind: item.kind, offset: offset))
            offset += item.shape.reduce(1, *)
        }
        self.entries = entries
        self.index = index
        count = offset
        values = .allocate(capacity: max(offset, 1)); values.initialize(repeating: 0, count: max(offset, 1))
        grads = .allocate(capacity: max(offset, 1)); grads.initialize(repeating: 0, count: max(offset, 1))
    }

    deinit { values.deallocate(); grads.deallocate() }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// Whether the optimizer updates `entry`: trainable by kind and not frozen.
    public func isTrained(_ entry: Entry) -> Bool { entry.trainable && !frozen.contains(entry.name) }

    public func entry(_ name: String) throws -> Entry {
        guard let i = index[name] else { throw TrainingError.missingParameter(name) }
        return entries[i]
    }

    public func offset(_ name: String) throws -> Int { try entry(name).offset }

    /// A parameter's values as an array (tests, export).
    public func array(_ name: String) throws -> [Float] {
        let e = try entry(name)
        return Array(UnsafeBufferPointer(start: values + e.offset, count: e.count))
    }

    /// A gradient as an array.
    public func gradient(_ name: String) throws -> [Float] {
        let e = try entry(name)
        return Array(UnsafeBufferPointer(start: grads + e.offset, count: e.count))
    }

    public func setValues(_ name: String, _ v: [Float]) throws {
        let e = try entry(name)
        guard v.count == e.count else { throw TrainingError.invalidInput("'\(name)' needs \(e.count) values, got \(v.count)") }
        v.withUnsafeBufferPointer { (values + e.offset).update(from: $0.baseAddress!, count: e.count) }
    }

    public func zeroGradients() { grads.update(repeating: 0, count: count) }

    /// Random init like transformers: normal(0, std) for matrices, ones for norms, zeros for the balancing bias.
    public func initialize(std: Float, rng: inout TrainingRandom) {
        for e in entries {
            let p = values + e.offset
            switch e.kind {
            case .matrix: for i in 0..<e.count { p[i] = rng.normal() * std }
            case .norm: p.update(repeating: 1, count: e.count)
            case .balanceBias, .bias: p.update(repeating: 0, count: e.count)
            }
        }
    }

    /// Reads every parameter from `weights`. Routed experts may be stored per expert (as deepseek-ai ships them) or
    /// stacked (`experts.gate_up_proj`, `experts.down_proj`, as transformers 5 saves them); a missing selection bias
    /// starts at zero.
    public func load(from weights: any WeightStore) throws {
        for e in entries {
            if e.kind == .balanceBias && !weights.contains(e.name) {
                try setValues(e.name, [Float](repeating: 0, count: e.count))
            } else {
                try setValues(e.name, try Self.read(e.name, shape: e.shape, from: weights))
            }
        }
    }

    /// Tensor `name` of `shape` from `weights` as float32, or sliced from a stacked experts tensor there.
    static func read(_ name: String, shape: [Int], from weights: any WeightStore) throws -> [Float] {
        if !weights.contains(name), let sliced = try stackedExpert(weights, name: name, shape: shape) { return sliced }
        let t = try weights.tensor(name, shape: shape)
        guard t.dtype.isFloatingPoint, t.dtype != .f8e4m3 else {
            throw WeightStoreError.unsupportedDType(name: name, file: weights.file(of: name) ?? weights.source, dtype: t.dtype.rawValue)
        }
        return t.toFloatArray()
    }

    /// One expert's `<prefix>.E.{gate,up,down}_proj.weight` read from transformers 5's stacked `<prefix>.gate_up_proj`
    /// (E, 2·I, H; gate rows first) or `<prefix>.down_proj` (E, H, I); nil when the name is not an expert's or there is
    /// no stacked tensor.
    private static func stackedExpert(_ weights: any WeightStore, name: String, shape: [Int]) throws -> [Float]? {
        let parts = name.split(separator: ".")
        guard parts.count >= 4, parts.last == "weight", let expert = Int(parts[parts.count - 3]), parts[parts.count - 4] == "experts" else { return nil }
        let projection = String(parts[parts.count - 2]), prefix = parts[..<(parts.count - 3)].joined(separator: ".")
        let stacked = projection == "down_proj" ? "\(prefix).down_proj" : "\(prefix).gate_up_proj"
        guard weights.contains(stacked), shape.count == 2 else { return nil }
        let t = try weights.tensor(stacked)
        guard t.shape.count == 3, expert < t.shape[0], t.dtype.isFloatingPoint, t.dtype != .f8e4m3 else {
            throw WeightStoreError.shapeMismatch(name: stacked, file: weights.file(of: stacked) ?? weights.source, expected: [expert + 1] + shape, found: t.shape)
        }
        let rows = shape[0], cols = shape[1]
        let firstRow = projection == "up_proj" ? rows : 0
        guard t.shape[2] == cols, t.shape[1] >= firstRow + rows else {
            throw WeightStoreError.shapeMismatch(name: stacked, file: weights.file(of: stacked) ?? weights.source, expected: [t.shape[0], firstRow + rows, cols], found: t.shape)
        }
        return t.matrixRows(index: expert, rows: firstRow..<(firstRow + rows)).toFloatArray()
    }

    /// Parameters (or gradients of the trainable ones) as safetensors F32 tensors.
    public func tensors(gradients: Bool) -> [SafeTensorsWriter.Tensor] {
        entries.filter { !gradients || $0.trainable }.map { e in
            let base = (gradients ? grads : values) + e.offset
            return SafeTensorsWriter.Tensor(name: e.name, dtype: .f32, shape: e.shape,
                                            bytes: Array(UnsafeRawBufferPointer(start: base, count: e.count * 4)))
        }
    }
}

/// A deterministic PRNG (xoshiro256**, seeded by SplitMix64) whose state can be saved and restored.
public struct TrainingRandom: RandomNumberGenerator, Sendable, Equatable {
    public var state: [UInt64]

    public init(seed: UInt64) {
        var s = seed
        state = (0..<4).map { _ in
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    public init(state: [UInt64]) { self.state = state }

    public mutating func next() -> UInt64 {
        let result = ((state[1] &* 5) << 7 | (state[1] &* 5) >> 57) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]; state[3] ^= state[1]; state[1] ^= state[2]; state[0] ^= state[3]
        state[2] ^= t
        state[3] = state[3] << 45 | state[3] >> 19
        return result
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Uniform integer in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

/// The parameters as F32 tensors viewed in place, so a model built over the store reads the current values.
extension ParameterStore: WeightStore {
    public var source: String { "training parameters" }
    public var tensorNames: [String] { entries.map(\.name).sorted() }
    public func file(of name: String) -> String? { nil }

    public func tensor(_ name: String) throws -> TensorData {
        guard contains(name) else { throw WeightStoreError.missingTensor(name: name, source: source) }
        let e = try entry(name)
        return TensorData(dtype: .f32, shape: e.shape, bytes: UnsafeRawBufferPointer(start: values + e.offset, count: e.count * 4), owner: self)
    }
}

/// Gradients by tensor name for the blocks' backward passes: trainable, unfrozen tensors only.
extension ParameterStore: GradientSink {
    public func gradientBuffer(_ name: String) -> UnsafeMutablePointer<Float>? {
        guard let e = try? entry(name), isTrained(e) else { return nil }
        return grads + e.offset
    }
}
