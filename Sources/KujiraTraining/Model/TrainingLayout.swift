import KujiraFormats
import KujiraModels

/// The training layout: `KujiraModels.ParameterLayout` (the one list of an architecture's tensors, routed experts
/// per expert as deepseek-ai ships them) with each tensor's kind.
public enum TrainingLayout {
    public typealias Item = (name: String, shape: [Int], kind: ParameterStore.Kind)

    /// Every tensor of the model, including the MTP module (layer `num_hidden_layers`) when the config has one.
    public static func items(_ config: ModelConfig) throws -> [Item] {
        var items: [Item] = []
        for entry in try ParameterLayout.entries(for: config) {
            let kind: ParameterStore.Kind
            switch entry.initial {
            case .normal: kind = .matrix
            case .ones: kind = .norm
            case .zeros: kind = entry.name.hasSuffix("e_score_correction_bias") ? .balanceBias : .bias
            case .expertTable: throw TrainingError.unsupported("hash-routing table \(entry.name)")
            }
            items.append((entry.name, entry.shape, kind))
        }
        return items
    }
}
