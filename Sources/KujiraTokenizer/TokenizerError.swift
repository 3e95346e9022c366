import KujiraFormats
/// Errors raised while loading or running a tokenizer; each names the file or field and what is wrong.
public enum TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    case fileNotFound(path: String)
    case invalidFile(path: String, reason: String)
    case missingField(path: String, field: String)
    case unsupported(path: String, feature: String)
    case invalidPattern(pattern: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "tokenizer: no tokenizer found at \(path) (expected a model directory with tokenizer.json, a tokenizer.json file, or a .gguf file)"
        case .invalidFile(let path, let reason):
            return "tokenizer: \(path): \(reason)"
        case .missingField(let path, let field):
            return "tokenizer: \(path): missing or malformed field '\(field)'"
        case .unsupported(let path, let feature):
            return "tokenizer: \(path): unsupported \(feature)"
        case .invalidPattern(let pattern, let reason):
            return "tokenizer: cannot compile pre-tokenizer pattern '\(quoted(pattern, limit: 120))': \(quoted(reason, limit: 200))"
        }
    }
}
