/// The one place sizes read from files are bounded: every integer a loader takes from a model file, `config.json` or
/// GGUF metadata goes through `SizeLimits.integer`, and every shape through `SizeLimits.elements` / `bytes`, so an
/// overflowing product or an absurd size becomes an error naming the file and field before anything is allocated.
/// New loaders and architectures get this by using `ModelConfig`'s getters and `WeightStore`'s shape checks.
public enum SizeLimits {
    /// The largest magnitude of any integer read from a config or metadata field (2^31 − 1: larger than any real
    /// dimension, vocabulary or context, small enough that the product of two fits in an `Int`).
    public static let maxInteger = Int(Int32.max)
    /// The most repeats of a block a config may ask for (layers, experts, MTP layers): each repeat adds entries to the
    /// parameter list, so a count of 2^31 would hang before any size check. 4x the largest published models (126
    /// layers, 384 routed experts).
    public static let maxRepeats = 1024
    /// The config keys that count repeated blocks, bounded by `maxRepeats`.
    public static let repeatCountKeys: Set<String> = [
        "num_hidden_layers", "n_routed_experts", "num_experts", "num_local_experts", "n_shared_experts",
        "num_nextn_predict_layers", "num_hash_layers", "hc_mult",
    ]
    /// The most elements one tensor may declare (2^40, 1.1 T).
    public static let maxTensorElements = 1 << 40
    /// The most parameters a model may declare (2^42, 4.4 T: several times the largest open model).
    public static let maxModelParameters = 1 << 42

    /// `value` if `|value| ≤ limit`, else an error naming `field` of `source`.
    public static func integer(_ value: Int, field: @autoclosure () -> String, source: @autoclosure () -> String,
                               limit: Int = maxInteger) throws -> Int {
        guard value.magnitude <= UInt(limit) else {
            throw SizeError(source: source(), field: field(), detail: "\(value) is out of range (at most \(limit) in magnitude)")
        }
        return value
    }

    /// The bound of config key `key`: `maxRepeats` for the block counts, else `maxInteger`.
    public static func limit(ofConfigKey key: String) -> Int { repeatCountKeys.contains(key) ? maxRepeats : maxInteger }

    /// The element count of `shape`: each dimension non-negative, the product without overflow and at most `limit`.
    public static func elements(_ shape: [Int], field: @autoclosure () -> String, source: @autoclosure () -> String,
                                limit: Int = maxTensorElements) throws -> Int {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { throw SizeError(source: source(), field: field(), detail: "shape \(shape) has a negative dimension") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= limit else {
                throw SizeError(source: source(), field: field(), detail: "shape \(shape) has more than \(limit) elements")
            }
            count = product
        }
        return count
    }

    /// `count × size` without overflow (a byte count from an element count and a per-element or per-block size).
    public static func bytes(_ count: Int, times size: Int, field: @autoclosure () -> String, source: @autoclosure () -> String) throws -> Int {
        let (product, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, count >= 0, size >= 0 else {
            throw SizeError(source: source(), field: field(), detail: "\(count) × \(size) bytes overflows")
        }
        return product
    }

    /// `value` clamped to ±(`maxInteger` + 1): arithmetic on a clamped metadata integer cannot overflow, and a config
    /// built from it still rejects the out-of-range value, naming the key.
    public static func clamped(_ value: Int) -> Int { min(max(value, -maxInteger - 1), maxInteger + 1) }

    /// `a + b` without overflow (offsets plus lengths).
    public static func sum(_ a: Int, _ b: Int, field: @autoclosure () -> String, source: @autoclosure () -> String) throws -> Int {
        let (total, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw SizeError(source: source(), field: field(), detail: "\(a) + \(b) overflows") }
        return total
    }
}

/// A size read from a file that is out of range or overflows; names the file and the field.
public struct SizeError: Error, CustomStringConvertible, Equatable {
    public let source: String
    public let field: String
    public let detail: String

    public init(source: String, field: String, detail: String) {
        self.source = source
        self.field = field
        self.detail = detail
    }

    public var description: String { "\(source): \(field): \(detail)" }
}

/// Untrusted text (names, keys and values from model files, template source, request data), made safe to quote in
/// an error message: at most `limit` characters, then an ellipsis; newlines and tabs as `\n` `\r` `\t`, and control,
/// format (bidirectional overrides), separator, private-use and unassigned characters as `\u{...}`, so hostile input
/// can neither flood a log nor rewrite a terminal line. Reads only the first `limit` + 1 characters.
public func quoted(_ text: String, limit: Int = 80) -> String {
    var out = ""
    var count = 0
    for scalar in text.unicodeScalars {
        guard count < limit else { return out + "…" }
        count += 1
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}
