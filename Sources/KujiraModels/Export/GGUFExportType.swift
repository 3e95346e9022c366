import KujiraFormats
import KujiraTensor

/// The storage types `kujira convert --to gguf --type` offers, and how each tensor falls back when its rows do not
/// fit the type's blocks (as llama.cpp's converter and quantizer do).
public enum GGUFExportType: String, Sendable, CaseIterable {
    case f32, f16, bf16, q8_0, q4_k

    /// The type 2-D+ tensors are stored in when their rows allow it.
    public var preferred: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        case .q4_k: return .q4_K
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`: ALL_F32, MOSTLY_F16, MOSTLY_BF16, MOSTLY_Q8_0, MOSTLY_Q4_K_S).
    public var fileType: UInt32 {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .bf16: return 32
        case .q8_0: return 7
        case .q4_k: return 14
        }
    }

    /// The type one tensor is stored in. 1-D tensors (norms, biases, router bias, rope factors) and the MoE router
    /// (`ffn_gate_inp`) stay F32, as convert_hf_to_gguf and llama-quantize keep them. A row length that is not a
    /// multiple of the block size falls back: Q4_K → Q8_0 (llama-quantize would pick Q5_0; Kujira writes no Q5_0) →
    /// F16, Q8_0 → F16 (gguf-py's QuantError fallback). With q4_k, `output.weight` gets Q6_K, as llama.cpp's
    /// Q4_K_S and Q4_K_M mixes give it.
    public func storageType(ggufName: String, shape: [Int]) -> GGMLType {
        if shape.count <= 1 || ggufName.hasSuffix("ffn_gate_inp.weight") { return .f32 }
        let rowLength = shape.last!
        let chain = self == .q4_k && ggufName == "output.weight" ? [.q6_K, .q8_0, .f16] : fallbackChain
        for candidate in chain where rowLength % candidate.blockLayout.elements == 0 { return candidate }
        return .f32
    }

    private var fallbackChain: [GGMLType] {
        switch self {
        case .q4_k: return [.q4_K, .q8_0, .f16]
        case .q8_0: return [.q8_0, .f16]
        default: return [preferred]
        }
    }
}
