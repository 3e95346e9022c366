import Foundation
import KujiraTensor

/// Where backward passes add weight gradients, by tensor name (the names the architecture's parameter layout uses).
public protocol GradientSink: AnyObject {
    /// The gradient of tensor `name` (as many floats as the tensor), or nil when the tensor is frozen and gets none.
    func gradientBuffer(_ name: String) -> UnsafeMutablePointer<Float>?
}

/// The activations one block saved in its training forward pass, and that block's backward pass over them.
public protocol Pullback: AnyObject {
    /// Given ∂loss/∂output, adds the block's weight gradients to `sink` and returns ∂loss/∂input.
    func backward(_ dOut: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer
}

/// The rows of a training pass — `batch` sequences of `length` tokens, rows ordered (sequence, position), every
/// sequence starting at RoPE position `positionOffset` — and the pass-wide loss settings blocks read.
public struct TrainingShape: Sendable, Equatable {
    public let batch: Int
    public let length: Int
    /// RoPE position of each sequence's first row (1 for the multi-token-prediction module, which sees position i + 1).
    public var positionOffset: Int
    /// Weight α of DeepSeek-V3's sequence-wise balance loss, added by every routed-expert block of the pass (0: off).
    public var balanceAlpha: Float
    public var rows: Int { batch * length }

    public init(batch: Int, length: Int, positionOffset: Int = 0, balanceAlpha: Float = 0) {
        self.batch = batch
        self.length = length
        self.positionOffset = positionOffset
        self.balanceAlpha = balanceAlpha
    }
}

/// A token mixer with a training forward pass (full causal attention over each sequence, no cache).
public protocol TrainableMixer: TokenMixer {
    /// out (rows, hidden) for x (rows, hidden), and the pullback of that pass.
    func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback)
    /// Throws naming what this instance's training pass does not cover (checked at load, before any step).
    func checkTrainable() throws
}

/// A feed-forward block with a training forward pass.
public protocol TrainableFeedForward: FeedForward {
    /// out (rows, hidden) for x (rows, hidden), and the pullback of that pass.
    func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback)
    /// Throws naming what this instance's training pass does not cover (checked at load, before any step).
    func checkTrainable() throws
}

extension TrainableMixer {
    public func checkTrainable() throws {}
}

/// A decoder block with a training forward pass over the residual stream.
public protocol TrainableBlock: DecoderBlock {
    /// The updated residual (rows, hidden) for x (rows, hidden), and the pullback of that pass.
    func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback)
}

/// A block or weight format the training passes do not cover yet, named.
public enum TrainingSupportError: Error, CustomStringConvertible, Equatable {
    case unsupportedBlock(String)

    public var description: String {
        switch self {
        case let .unsupportedBlock(what): return "training does not support \(what) yet"
        }
    }
}

/// Helpers the blocks' backward passes share.
enum TrainingKernels {
    /// Σ over rows of dy (rows, width), added to `bias`.
    static func addBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, width: Int, into bias: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = dy + r * width
            for i in 0..<width { bias[i] += row[i] }
        }
    }

    /// Backward of y = x · Wᵀ (+ a LoRA adapter's term): dx (+)= ∂/∂x, W's gradient under `name` and the adapter's
    /// under its A and B names, each only when `sink` trains it.
    static func linearBackward(_ w: LinearWeight, name: String, x: FloatBuffer, dy: FloatBuffer, rows: Int, dx: FloatBuffer?,
                               accumulateInput: Bool, sink: GradientSink) {
        Linear.backward(w, x: x.pointer, dy: dy.pointer, n: rows, dx: dx?.pointer, accumulateInput: accumulateInput, dWeight: sink.gradientBuffer(name))
        if let adapter = w.adapter {
            adapter.backward(x: x.pointer, dy: dy.pointer, n: rows, dx: dx?.pointer, dA: sink.gradientBuffer(adapter.aName),
                             dB: sink.gradientBuffer(adapter.bName))
        }
    }

    /// x (rows, width) += bias per row.
    static func addBias(_ bias: [Float]?, to x: FloatBuffer, width: Int) {
        guard let bias else { return }
        let rows = x.count / width
        for r in 0..<rows {
            let row = x.pointer + r * width
            for i in 0..<width { row[i] += bias[i] }
        }
    }

    /// y (rows, weight.rows) = x · Wᵀ as a new buffer.
    static func project(_ weight: LinearWeight, _ x: FloatBuffer, rows: Int) -> FloatBuffer {
        let y = FloatBuffer(uninitializedCount: rows * weight.rows)
        Linear.trainingForward(weight, x: x.pointer, n: rows, into: y.pointer)
        return y
    }

    /// RMSNorm of x (rows, d) as a new buffer, with the per-row 1/rms the backward needs.
    static func rmsNorm(_ x: FloatBuffer, weight: [Float], rows: Int, eps: Float) -> (y: FloatBuffer, rstd: FloatBuffer) {
        let d = weight.count
        let y = FloatBuffer(uninitializedCount: rows * d), rstd = FloatBuffer(uninitializedCount: rows)
        weight.withUnsafeBufferPointer { NormOps.rmsNormForward(x: x.pointer, weight: $0.baseAddress!, rows: rows, d: d, eps: eps, y: y.pointer, rstd: rstd.pointer) }
        return (y, rstd)
    }

    /// RMSNorm backward: dx += ∂/∂x, and the weight gradient into `sink` under `name` when it is trained.
    static func rmsNormBackward(x: FloatBuffer, weight: [Float], rstd: FloatBuffer, dy: FloatBuffer, rows: Int,
                                dx: FloatBuffer, name: String, sink: GradientSink) {
        let d = weight.count
        let scratch: FloatBuffer? = sink.gradientBuffer(name) == nil ? FloatBuffer(count: d) : nil
        let dWeight = sink.gradientBuffer(name) ?? scratch!.pointer
        weight.withUnsafeBufferPointer {
            NormOps.rmsNormBackward(x: x.pointer, weight: $0.baseAddress!, rstd: rstd.pointer, dy: dy.pointer, rows: rows, d: d,
                                    dx: dx.pointer, dWeight: dWeight)
        }
    }
}

/// Per-task results written from concurrent tasks (each task writes only its own slot; the lock orders the writes).
final class ConcurrentSlots<Value>: @unchecked Sendable {
    private(set) var items: [Value?]
    private let lock = NSLock()
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Value) { lock.lock(); items[i] = value; lock.unlock() }
}
