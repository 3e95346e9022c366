import KujiraFormats
import KujiraTensor

/// Every parameter an architecture reads, by HF tensor name and shape — what `kujira init` creates, `inspect` counts
/// and the trainer optimises. Each architecture file lists its own (`ModelArchitecture.parameters`), built from the
/// shared blocks' `parameters(...)`, which spell the same names the blocks load.
public enum ParameterLayout {
    /// How a freshly initialised parameter starts.
    public enum Initial: Sendable, Equatable {
        /// Normal(0, `initializer_range`) — linear weights and embeddings.
        case normal
        /// All ones — RMSNorm weights.
        case ones
        /// All zeros — biases, including `e_score_correction_bias`.
        case zeros
        /// A hash-routing table (vocab, k): token t's j-th expert is (t·k + j) mod `experts` (distinct within a row).
        case expertTable(experts: Int)
    }

    /// One parameter.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var initial: Initial
        /// Stored element type: F32 for weights, I64 for integer tables.
        public var dtype: DType

        public init(_ name: String, _ shape: [Int], _ initial: Initial = .normal, dtype: DType = .f32) {
            self.name = name
            self.shape = shape
            self.initial = initial
            self.dtype = dtype
        }

        /// Elements of the parameter.
        public var count: Int { shape.reduce(1, *) }
    }

    /// The parameters of the architecture named by `config.model_type`.
    public static func entries(for config: ModelConfig) throws -> [Entry] {
        try ModelRegistry.architecture(for: config).parameters
    }
}
