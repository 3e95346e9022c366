import Foundation
import KujiraFormats
import KujiraTensor

/// Rotary position embedding (RoPE) with the default, linear, YaRN and llama3 frequency schemes.
public struct RotaryEmbedding: Sendable {
    /// Which coordinates form a rotating pair.
    public enum Layout: Sendable {
        /// (x[i], x[i + d/2]) — Llama, Qwen2 (transformers' `rotate_half`).
        case halfSplit
        /// (x[2i], x[2i + 1]) — DeepSeek's MLA rope part (the original complex-number form).
        case interleaved
    }

    /// Name under which a model's weights carry per-pair frequency divisors (GGUF's `rope_freqs.weight`).
    public static let frequencyFactorsTensor = "model.rotary_emb.frequency_factors"

    /// Rotary dimension (even).
    public let dim: Int
    public let layout: Layout
    /// Inverse frequency of each pair, `dim / 2` entries.
    public let inverseFrequencies: [Float]
    /// Multiplier applied to cos and sin (YaRN's attention factor; 1 otherwise).
    public let attentionScaling: Float
    /// What llama.cpp's angle recurrence needs (`ggmlAngles`): the base, the linear scale, the per-pair divisors.
    let base: Float, frequencyScale: Float, frequencyFactors: [Float]?

    /// `frequencyFactors` (llama.cpp's `rope_freqs` tensor, how GGUF files carry llama3 scaling) divide the
    /// inverse frequencies pair by pair.
    public init(config: RopeConfig, dim: Int, maxPositionEmbeddings: Int, layout: Layout, frequencyFactors: [Float]? = nil) {
        precondition(dim % 2 == 0, "rotary dimension must be even")
        self.dim = dim
        self.layout = layout
        let base = config.theta
        self.base = Float(base)
        frequencyScale = config.type == "linear" ? Float(1 / config.factor) : 1
        self.frequencyFactors = frequencyFactors
        // Float32 like the reference: base ** (arange(0, dim, 2) / dim).
        let positionFrequencies: [Double] = stride(from: 0, to: dim, by: 2).map { Double(Float(pow(base, Double($0) / Double(dim)))) }
        var inverse = positionFrequencies.map { 1 / $0 }
        var scaling = 1.0
        switch config.type {
        case "linear":
            inverse = inverse.map { $0 / config.factor }
        case "yarn":
            (inverse, scaling) = Self.yarn(config: config, dim: dim, positionFrequencies: positionFrequencies, maxPositionEmbeddings: maxPositionEmbeddings)
        case "llama3":
            inverse = Self.llama3(config: config, inverse: inverse)
        default:
            break
        }
        if let factors = frequencyFactors {
            precondition(factors.count == dim / 2, "rope frequency factors must have dim/2 entries")
            inverse = zip(inverse, factors).map { $0 / Double($1) }
        }
        inverseFrequencies = inverse.map { Float($0) }
        attentionScaling = Float(scaling)
    }

    /// YaRN's `get_mscale`: 1 for scale ≤ 1, else 0.1 · mscale · ln(scale) + 1.
    public static func yarnMscale(_ scale: Double, _ mscale: Double = 1) -> Double {
        scale <= 1 ? 1 : 0.1 * mscale * log(scale) + 1
    }

    private static func yarn(config: RopeConfig, dim: Int, positionFrequencies: [Double], maxPositionEmbeddings: Int) -> ([Double], Double) {
        let base = config.theta, factor = config.factor
        let originalMax = Double(config.originalMaxPositionEmbeddings ?? maxPositionEmbeddings)
        var attentionFactor = config.attentionFactor
        if attentionFactor == nil {
            if let m = config.mscale, let mAll = config.mscaleAllDim, m != 0, mAll != 0 {
                attentionFactor = yarnMscale(factor, m) / yarnMscale(factor, mAll)
            } else {
                attentionFactor = yarnMscale(factor)
            }
        }
        func correctionDim(_ rotations: Double) -> Double {
            Double(dim) * log(originalMax / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        var low = correctionDim(config.betaFast), high = correctionDim(config.betaSlow)
        if config.truncate { low = low.rounded(.down); high = high.rounded(.up) }
        low = max(low, 0)
        high = min(high, Double(dim - 1))
        if low == high { high += 0.001 }
        let inverse = (0..<(dim / 2)).map { i -> Double in
            let ramp = Double(Float(min(max((Double(i) - low) / (high - low), 0), 1)))
            let extrapolationFactor = 1 - ramp
            let extrapolation = 1 / positionFrequencies[i]
            let interpolation = 1 / (factor * positionFrequencies[i])
            return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
        }
        return (inverse, attentionFactor ?? 1)
    }

    private static func llama3(config: RopeConfig, inverse: [Double]) -> [Double] {
        let factor = config.factor
        let oldContext = Double(config.originalMaxPositionEmbeddings ?? 8192)
        let lowFreqWavelength = oldContext / config.lowFreqFactor
        let highFreqWavelength = oldContext / config.highFreqFactor
        return inverse.map { f in
            let wavelength = 2 * Double.pi / f
            if wavelength < highFreqWavelength { return f }
            if wavelength > lowFreqWavelength { return f / factor }
            let smooth = (oldContext / wavelength - config.lowFreqFactor) / (config.highFreqFactor - config.lowFreqFactor)
            return (1 - smooth) * f / factor + smooth * f
        }
    }

    /// cos and sin of every pair's angle at `position` into `table` (dim entries: dim/2 cos, then dim/2 sin).
    public func angles(position: Int, into table: UnsafeMutableBufferPointer<Float>) {
        let half = dim / 2
        for i in 0..<half {
            let angle = Float(position) * inverseFrequencies[i]
            table[i] = cos(angle) * attentionScaling
            table[half + i] = sin(angle) * attentionScaling
        }
    }

    /// `angles` as ggml computes them (`ggml_rope_cache_init`, default and linear scaling): θ starts at the position
    /// and is multiplied by powf(base, −2/dim) pair after pair, in float; cosf/sinf of freqScale · θ / factor.
    public func ggmlAngles(position: Int, into table: UnsafeMutableBufferPointer<Float>) {
        let half = dim / 2
        let thetaScale = powf(base, -2 / Float(dim))
        var theta = Float(position)
        for i in 0..<half {
            let angle = frequencyScale * (theta / (frequencyFactors?[i] ?? 1))
            table[i] = cosf(angle) * attentionScaling
            table[half + i] = sinf(angle) * attentionScaling
            theta *= thetaScale
        }
    }

    /// Rotates `count` vectors of `dim` floats, `stride` floats apart starting at `x`, by the angles in `table`.
    /// With llama.cpp's numerics the products round as `ggml_rope` does: a' = fma(a, cos, −(b·sin)), b' = fma(a, sin, b·cos).
    /// `inverse` rotates by the negated angles (DeepSeek-V4 un-rotates attention outputs at the query's position).
    public func rotate(_ x: UnsafeMutablePointer<Float>, count: Int, stride: Int, table: UnsafeBufferPointer<Float>, numerics: Numerics = .kujira,
                       inverse: Bool = false) {
        let half = dim / 2, ggml = numerics == .llamaCpp
        for v in 0..<count {
            let p = x + v * stride
            for i in 0..<half {
                let c = table[i], s = inverse ? -table[half + i] : table[half + i]
                let (ia, ib) = layout == .halfSplit ? (i, i + half) : (2 * i, 2 * i + 1)
                let a = p[ia], b = p[ib]
                if ggml {
                    p[ia] = (-(b * s)).addingProduct(a, c)
                    p[ib] = (b * c).addingProduct(a, s)
                } else {
                    p[ia] = a * c - b * s
                    p[ib] = b * c + a * s
                }
            }
        }
    }
}
