/// Token embedding and RMSNorm, forward and backward (llm.c style: the backward accumulates into its gradients).
public enum NormOps {
    /// x (rows, d) = table[tokens[r]] where table is (vocab, d).
    public static func embeddingForward(tokens: [Int], table: UnsafePointer<Float>, d: Int, into x: UnsafeMutablePointer<Float>) {
        for (r, token) in tokens.enumerated() { (x + r * d).update(from: table + token * d, count: d) }
    }

    /// dTable[tokens[r]] += dx[r].
    public static func embeddingBackward(tokens: [Int], dx: UnsafePointer<Float>, d: Int, dTable: UnsafeMutablePointer<Float>) {
        for (r, token) in tokens.enumerated() {
            let g = dTable + token * d, s = dx + r * d
            for i in 0..<d { g[i] += s[i] }
        }
    }

    /// y = x · rstd · w per row, rstd = 1/√(mean(x²) + eps). x, y (rows, d); rstd (rows,) saved for the backward.
    public static func rmsNormForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, d: Int, eps: Float,
                                      y: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>) {
        Parallel.forRanges(rows, minimumPerPart: 64) { range in
            for r in range {
                let xr = x + r * d, yr = y + r * d
                var sum: Float = 0
                for i in 0..<d { sum += xr[i] * xr[i] }
                let s = 1 / (sum / Float(d) + eps).squareRoot()
                rstd[r] = s
                for i in 0..<d { yr[i] = xr[i] * s * weight[i] }
            }
        }
    }

    /// With g = dy ⊙ w: dx += rstd · g − x · rstd³ · (g·x)/d;  dw += Σ_rows dy ⊙ x · rstd.
    public static func rmsNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                       dy: UnsafePointer<Float>, rows: Int, d: Int, dx: UnsafeMutablePointer<Float>,
                                       dWeight: UnsafeMutablePointer<Float>) {
        let parts = Swift.min(Parallel.threads, Swift.max(1, rows / 64))
        let partial = FloatBuffer(count: parts * d)
        Parallel.forEach(parts) { p in
            let dw = partial.pointer + p * d
            for r in (p * rows / parts)..<((p + 1) * rows / parts) {
                let xr = x + r * d, gr = dy + r * d, dxr = dx + r * d
                let s = rstd[r]
                var dot: Float = 0
                for i in 0..<d { dot += gr[i] * weight[i] * xr[i] }
                let c = s * s * s * dot / Float(d)
                for i in 0..<d {
                    dxr[i] += s * gr[i] * weight[i] - c * xr[i]
                    dw[i] += gr[i] * xr[i] * s
                }
            }
        }
        for p in 0..<parts { for i in 0..<d { dWeight[i] += partial[p * d + i] } }
    }
}
