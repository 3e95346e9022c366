import Foundation

/// Rotary-embedding settings normalised from either config form.
///
/// deepseek-ai writes `rope_theta` at the top level and `rope_scaling: {type|rope_type, factor, ...}`;
/// transformers 5 writes `rope_parameters: {rope_type, rope_theta, factor, ...}`.
public struct RopeConfig: Sendable, Equatable {
    /// `default`, `linear`, `yarn`, `llama3` (others are rejected).
    public var type: String
    public var theta: Double
    public var factor: Double
    public var originalMaxPositionEmbeddings: Int?
    // YaRN
    public var betaFast: Double
    public var betaSlow: Double
    public var mscale: Double?
    public var mscaleAllDim: Double?
    public var attentionFactor: Double?
    public var truncate: Bool
    // llama3
    public var lowFreqFactor: Double
    public var highFreqFactor: Double

    /// Plain RoPE with base `theta`.
    public static func plain(theta: Double) -> RopeConfig {
        RopeConfig(type: "default", theta: theta, factor: 1, originalMaxPositionEmbeddings: nil, betaFast: 32, betaSlow: 1,
                   mscale: nil, mscaleAllDim: nil, attentionFactor: nil, truncate: true, lowFreqFactor: 1, highFreqFactor: 4)
    }

    static let supportedTypes = ["default", "linear", "yarn", "llama3"]
}

extension ModelConfig {
    /// The RoPE settings, from `rope_parameters` or `rope_theta` + `rope_scaling`.
    public func rope(defaultTheta: Double = 10000) throws -> RopeConfig {
        var params: [String: JSONValue] = [:]
        var paramsKey = "rope_parameters"
        if case let .object(p)? = values["rope_parameters"] {
            params = p
        } else if case let .object(p)? = values["rope_scaling"] {
            params = p
            paramsKey = "rope_scaling"
        }
        let nested = ModelConfig(values: params, path: "\(path) (\(paramsKey))")
        let theta = try nested.optionalFloat("rope_theta") ?? optionalFloat("rope_theta") ?? defaultTheta
        var config = RopeConfig.plain(theta: theta)
        config.type = try nested.optionalString("rope_type") ?? nested.optionalString("type") ?? "default"
        guard RopeConfig.supportedTypes.contains(config.type) else {
            throw ConfigError.invalidValue(path: path, key: "\(paramsKey).rope_type", detail: "'\(quoted(config.type))' is not supported (supported: \(RopeConfig.supportedTypes.joined(separator: ", ")))")
        }
        if config.type == "default" { return config }
        config.factor = try nested.float("factor")
        guard config.factor > 0 else { throw ConfigError.invalidValue(path: path, key: "\(paramsKey).factor", detail: "must be positive") }
        config.originalMaxPositionEmbeddings = try nested.optionalInt("original_max_position_embeddings")
        config.betaFast = try nested.float("beta_fast", default: 32)
        config.betaSlow = try nested.float("beta_slow", default: 1)
        config.mscale = try nested.optionalFloat("mscale")
        config.mscaleAllDim = try nested.optionalFloat("mscale_all_dim")
        config.attentionFactor = try nested.optionalFloat("attention_factor")
        config.truncate = try nested.bool("truncate", default: true)
        config.lowFreqFactor = try nested.float("low_freq_factor", default: 1)
        config.highFreqFactor = try nested.float("high_freq_factor", default: 4)
        if config.type == "llama3" && config.originalMaxPositionEmbeddings == nil {
            throw ConfigError.missingKey(path: path, key: "\(paramsKey).original_max_position_embeddings")
        }
        return config
    }
}
