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

/// Untrusted text (template source, data, file fields) as quoted in an error message: at most `limit` characters,
/// with control, format and other invisible characters escaped as `\u{...}`, so that hostile input can neither
/// flood a log nor rewrite a terminal line. Reads only the first `limit` + 1 characters.
func errorSnippet(_ text: String, limit: Int = 60) -> String {
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
