/// Errors from loading, parsing or rendering a chat template.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// The template text is malformed or uses syntax this engine does not support.
    case syntax(String, line: Int, column: Int)
    /// Rendering failed (type error, undefined attribute, unknown filter...). Line 0 means "unknown position".
    case runtime(String, line: Int, column: Int)
    /// The template itself called `raise_exception(message)`.
    case raised(String)
    /// Bad data handed to the engine (JSON, messages, config file).
    case invalidInput(String)
    /// Parsing or rendering went past a `TemplateBudget` limit (named by `limit`). Line 0 means "unknown position".
    case budgetExceeded(TemplateBudget.Limit, String, line: Int, column: Int)

    public var description: String {
        switch self {
        case .syntax(let message, let line, let column):
            return "chat template syntax error at \(line):\(column): \(message)"
        case .runtime(let message, let line, let column):
            return line > 0 ? "chat template error at \(line):\(column): \(message)" : "chat template error: \(message)"
        case .raised(let message):
            return "chat template raised an exception: \(message)"
        case .invalidInput(let message):
            return "chat template input error: \(message)"
        case .budgetExceeded(let limit, let message, let line, let column):
            let position = line > 0 ? " at \(line):\(column)" : ""
            return "chat template exceeded its \(limit) budget\(position): \(message)"
        }
    }
}

/// A position in the template source (1-based line and column, counted in Unicode scalars).
struct SourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int
}

/// Shorthand for a runtime error whose position the evaluator fills in.
func runtimeError(_ message: String) -> ChatTemplateError {
    .runtime(message, line: 0, column: 0)
}
