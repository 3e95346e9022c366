/// Matrix products with weights in their stored format (the hot path of every model).
public enum Linear {
    /// out (n, rows) = x (n, cols) @ W (rows, cols)^T, for n tokens.
    ///
    /// Reference implementation: decodes one weight row at a time and dots it with every token.
    public static func forward(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let rows = w.rows, cols = w.cols
        precondition(x.count >= n * cols && out.count >= n * rows, "linear: buffers too small")
        let row = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
        defer { row.deallocate() }
        for r in 0..<rows {
            w.decodeRow(r, into: row)
            for t in 0..<n {
                out[t * rows + r] = dot(UnsafeBufferPointer(row), UnsafeBufferPointer(rebasing: x[(t * cols)..<((t + 1) * cols)]))
            }
        }
    }

    /// Convenience: `[Float]` in, `[Float]` out.
    public static func forward(_ w: LinearWeight, _ x: [Float], n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * w.rows)
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { forward(w, xb, n: n, into: $0) } }
        return out
    }

    /// a · b over equal-length float vectors, 16 lanes at a time.
    @inline(__always)
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        let n = a.count
        var acc = SIMD16<Float>.zero
        var i = 0
        let pa = UnsafeRawPointer(a.baseAddress!), pb = UnsafeRawPointer(b.baseAddress!)
        while i + 16 <= n {
            acc += pa.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * pb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var sum = acc.sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }
}
