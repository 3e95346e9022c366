import Foundation

/// SwiGLU and sigmoid, forward and backward.
public enum ActivationOps {
    /// h = silu(g) ⊙ u, where gate g and up u are `width` columns of rows `stride` apart (gate first if fused).
    public static func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, stride: Int, rows: Int, width: Int,
                                     h: UnsafeMutablePointer<Float>) {
        Parallel.forRanges(rows, minimumPerPart: 256) { range in
            for r in range {
                let g = gate + r * stride, u = up + r * stride, o = h + r * width
                for i in 0..<width { o[i] = g[i] / (1 + exp(-g[i])) * u[i] }
            }
        }
    }

    /// dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = dh ⊙ silu(g) (written, not accumulated).
    public static func swigluBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, stride: Int, rows: Int, width: Int,
                                      dh: UnsafePointer<Float>, dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>) {
        Parallel.forRanges(rows, minimumPerPart: 256) { range in
            for r in range {
                let g = gate + r * stride, u = up + r * stride, d = dh + r * width, dg = dGate + r * stride, du = dUp + r * stride
                for i in 0..<width {
                    let s = 1 / (1 + exp(-g[i]))
                    du[i] = d[i] * g[i] * s
                    dg[i] = d[i] * u[i] * s * (1 + g[i] * (1 - s))
                }
            }
        }
    }
}
