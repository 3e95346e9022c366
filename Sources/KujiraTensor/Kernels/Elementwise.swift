import CKujiraKernels
import Foundation

/// Normalisation, activations and softmax over float rows.
public enum Elementwise {
    /// RMSNorm of each row: out[i] = x[i] / sqrt(mean(x²) + eps) * weight[i]. x, out (n, d); weight (d,).
    public static func rmsNorm(_ x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, eps: Float, n: Int,
                               into out: UnsafeMutableBufferPointer<Float>) {
        let d = weight.count
        for t in 0..<n {
            let row = UnsafeBufferPointer(rebasing: x[(t * d)..<((t + 1) * d)])
            let meanSquare = Linear.dot(row, row) / Float(d)
            let scale = 1 / (meanSquare + eps).squareRoot()
            for i in 0..<d { out[t * d + i] = row[i] * scale * weight[i] }
        }
    }

    /// `rmsNorm` in the arithmetic `numerics` names (`GGMLMath.rmsNorm` for llama.cpp's).
    @inline(__always)
    public static func rmsNorm(_ x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, eps: Float, n: Int,
                               into out: UnsafeMutableBufferPointer<Float>, numerics: Numerics) {
        if numerics == .llamaCpp { GGMLMath.rmsNorm(x, weight: weight, eps: eps, n: n, into: out) } else { rmsNorm(x, weight: weight, eps: eps, n: n, into: out) }
    }

    /// Array convenience for `rmsNorm`.
    public static func rmsNorm(_ x: [Float], weight: [Float], eps: Float) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xb in weight.withUnsafeBufferPointer { wb in out.withUnsafeMutableBufferPointer {
            rmsNorm(xb, weight: wb, eps: eps, n: x.count / weight.count, into: $0)
        } } }
        return out
    }

    /// SiLU(x) = x * sigmoid(x).
    @inline(__always)
    public static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    /// Logistic sigmoid.
    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    /// SwiGLU in place: gate[i] = silu(gate[i]) * up[i].
    public static func swiglu(gate: UnsafeMutableBufferPointer<Float>, up: UnsafeBufferPointer<Float>) {
        for i in 0..<gate.count { gate[i] = silu(gate[i]) * up[i] }
    }

    /// `swiglu` in the arithmetic `numerics` names (`GGMLMath.swiglu` for llama.cpp's).
    @inline(__always)
    public static func swiglu(gate: UnsafeMutableBufferPointer<Float>, up: UnsafeBufferPointer<Float>, numerics: Numerics) {
        if numerics == .llamaCpp { GGMLMath.swiglu(gate: gate, up: up) } else { swiglu(gate: gate, up: up) }
    }

    /// SwiGLU with DeepSeek-V4's clamps in place: gate[i] = silu(min(gate[i], limit)) * clamp(up[i], -limit, limit).
    public static func swigluClamped(gate: UnsafeMutableBufferPointer<Float>, up: UnsafeBufferPointer<Float>, limit: Float) {
        for i in 0..<gate.count { gate[i] = silu(min(gate[i], limit)) * min(max(up[i], -limit), limit) }
    }

    /// RMSNorm without a weight, in place over each row of `width` values: x[i] /= sqrt(mean(x²) + eps). x (n, width).
    public static func rmsNormUnweighted(_ x: UnsafeMutablePointer<Float>, width: Int, rows n: Int, eps: Float) {
        for t in 0..<n {
            let row = UnsafeBufferPointer(start: x + t * width, count: width)
            let scale = 1 / (Linear.dot(row, row) / Float(width) + eps).squareRoot()
            for i in 0..<width { x[t * width + i] *= scale }
        }
    }

    /// LayerNorm of one row of `weight.count` values in place: (x - mean) / sqrt(var + eps) · weight + bias
    /// (the population variance, as torch's `nn.LayerNorm`).
    public static func layerNorm(_ x: UnsafeMutablePointer<Float>, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>, eps: Float) {
        let d = weight.count
        var mean: Float = 0
        for i in 0..<d { mean += x[i] }
        mean /= Float(d)
        var variance: Float = 0
        for i in 0..<d { let c = x[i] - mean; variance += c * c }
        variance /= Float(d)
        let scale = 1 / (variance + eps).squareRoot()
        for i in 0..<d { x[i] = (x[i] - mean) * scale * weight[i] + bias[i] }
    }

    /// softplus(x) = ln(1 + eˣ), as torch computes it (x itself above 20).
    @inline(__always)
    public static func softplus(_ x: Float) -> Float { x > 20 ? x : log1p(exp(x)) }

    /// Numerically stable softmax in place over `x`.
    public static func softmax(_ x: UnsafeMutableBufferPointer<Float>) {
        guard !x.isEmpty else { return }
        var maxValue = -Float.infinity
        for v in x where v > maxValue { maxValue = v }
        var sum: Float = 0
        for i in 0..<x.count {
            let e = exp(x[i] - maxValue)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<x.count { x[i] *= inv }
    }

    /// out += x, elementwise.
    public static func add(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<x.count { out[i] += x[i] }
    }

    /// out += a * x, elementwise (`kujira_add_scaled` with AVX2).
    public static func addScaled(_ x: UnsafeBufferPointer<Float>, _ a: Float, into out: UnsafeMutableBufferPointer<Float>) {
        if KernelISA.floatKernels, let xs = x.baseAddress, let o = out.baseAddress { return kujira_add_scaled(xs, a, o, x.count) }
        swiftAddScaled(x, a, into: out)
    }

    /// out (n,) += weights[i] · row i for `count` rows `stride` floats apart, in order (an attention row's values): the bits
    /// of one `addScaled` per row; with AVX2 `out` stays in registers across the rows (`kujira_add_scaled_rows`).
    @inline(__always)
    public static func addScaledRows(_ rows: UnsafePointer<Float>, stride: Int, weights: UnsafePointer<Float>, count: Int, n: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        if KernelISA.floatKernels { return kujira_add_scaled_rows(rows, stride, weights, count, n, out) }
        for i in 0..<count {
            swiftAddScaled(UnsafeBufferPointer(start: rows + i * stride, count: n), weights[i], into: UnsafeMutableBufferPointer(start: out, count: n))
        }
    }

    /// `addScaled` in Swift (reference of `kujira_add_scaled`).
    static func swiftAddScaled(_ x: UnsafeBufferPointer<Float>, _ a: Float, into out: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<x.count { out[i] += a * x[i] }
    }
}
