import KujiraTensor

/// Rotary embedding over batched sequences, reusing the inference `RotaryEmbedding` (same frequencies, YaRN
/// scaling and interleaved layout). The rotation scaled by YaRN's attention factor s is y = s·R(θ)x, so its
/// backward is dx = s·R(−θ)dy: the same rotation with the sine negated.
public struct RotaryTables: Sendable {
    public let rope: RotaryEmbedding
    /// Per position: dim/2 cosines then dim/2 sines (forward), and the same with negated sines (backward).
    let forwardTable: [Float]
    let backwardTable: [Float]
    public let positions: Int

    /// Tables for positions `offset ..< offset + count`.
    public init(rope: RotaryEmbedding, offset: Int, count: Int) {
        self.rope = rope
        positions = count
        let dim = rope.dim
        var table = [Float](repeating: 0, count: count * dim)
        table.withUnsafeMutableBufferPointer { tb in
            for t in 0..<count {
                rope.angles(position: offset + t, into: UnsafeMutableBufferPointer(rebasing: tb[(t * dim)..<((t + 1) * dim)]))
            }
        }
        forwardTable = table
        var inverse = table
        for t in 0..<count { for i in (dim / 2)..<dim { inverse[t * dim + i] = -inverse[t * dim + i] } }
        backwardTable = inverse
    }

    /// Rotates, for every row r (position r % positions), `count` vectors of `dim` floats starting at
    /// `x + r * rowStride`, `vectorStride` apart. `inverse` applies the backward (transposed) rotation.
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, count: Int, vectorStride: Int, inverse: Bool) {
        let dim = rope.dim
        let table = inverse ? backwardTable : forwardTable
        table.withUnsafeBufferPointer { tb in
            Parallel.forRanges(rows, minimumPerPart: 256) { range in
                for r in range {
                    let t = r % positions
                    rope.rotate(x + r * rowStride, count: count, stride: vectorStride,
                                table: UnsafeBufferPointer(rebasing: tb[(t * dim)..<((t + 1) * dim)]))
                }
            }
        }
    }
}
