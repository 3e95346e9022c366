/// Limits on what parsing and rendering one chat template may cost. Templates come from downloaded model files, so
/// a hostile one must fail with `ChatTemplateError.budgetExceeded` rather than crash, hang or exhaust memory.
///
/// The defaults are orders of magnitude above what real templates use (the DeepSeek-V3 template renders a
/// ten-turn conversation with tools in a few thousand steps, at depth < 20).
public struct TemplateBudget: Sendable, Equatable {
    /// The limit a template ran into.
    public enum Limit: String, Sendable, Equatable, CustomStringConvertible {
        case steps, depth, output, valueSize

        public var description: String {
            switch self {
            case .steps: return "step"
            case .depth: return "depth"
            case .output: return "output"
            case .valueSize: return "value size"
            }
        }
    }

    /// Evaluation steps per render: one per statement run and expression evaluated, 1/8 per list item visited or
    /// copied, 1/2 per new value allocated (`range`, characters of a string), 1/64 per byte of text built,
    /// searched, compared or hashed.
    public var maxSteps: Int
    /// Nesting, counted separately for the template source (blocks, brackets, and the length of filter, attribute,
    /// call and operator chains), for the evaluator at run time (statements, expressions, macro calls), and for
    /// values (lists in lists, including message content passed in).
    public var maxDepth: Int
    /// Bytes of rendered text.
    public var maxOutputBytes: Int
    /// Largest string a template may build (UTF-8 bytes), captured blocks and macro output included.
    public var maxStringBytes: Int
    /// Largest list or dict a template may build (items).
    public var maxItems: Int

    public init(maxSteps: Int = 1_000_000, maxDepth: Int = 256, maxOutputBytes: Int = 8 << 20,
                maxStringBytes: Int = 8 << 20, maxItems: Int = 1 << 20) {
        self.maxSteps = maxSteps
        self.maxDepth = maxDepth
        self.maxOutputBytes = maxOutputBytes
        self.maxStringBytes = maxStringBytes
        self.maxItems = maxItems
    }

    /// The defaults: 1,000,000 steps, depth 256, 8 MiB of output, 8 MiB strings, 1 Mi-item lists.
    public static let `default` = TemplateBudget()
}

/// One render's use of its `TemplateBudget`: cost in 1/64-step units and the evaluator's current depth.
final class BudgetMeter {
    let budget: TemplateBudget
    private var used = 0
    private let capacity: Int
    private(set) var depth = 0
    /// Nesting of captures (`{% set %}` blocks, filter blocks, macro bodies): their text is a value, not output.
    var captures = 0

    static let unitsPerStep = 64, unitsPerItem = 8, unitsPerNewValue = 32

    init(_ budget: TemplateBudget) {
        self.budget = budget
        let (capacity, overflow) = max(0, budget.maxSteps).multipliedReportingOverflow(by: Self.unitsPerStep)
        self.capacity = overflow ? .max : capacity
    }

    func step() throws { try charge(units: Self.unitsPerStep) }
    func charge(bytes: Int) throws { try charge(units: bytes) }
    func charge(items: Int) throws { try charge(units: saturatingProduct(items, Self.unitsPerItem)) }
    func charge(newValues: Int) throws { try charge(units: saturatingProduct(newValues, Self.unitsPerNewValue)) }

    func charge(units: Int) throws {
        let (sum, overflow) = used.addingReportingOverflow(max(0, units))
        used = overflow ? .max : sum
        guard used <= capacity else {
            throw budgetError(.steps, "more than \(budget.maxSteps) evaluation steps (a loop too long, or too much work)")
        }
    }

    /// Steps charged so far (rounded up).
    var stepsUsed: Int { used / Self.unitsPerStep + (used % Self.unitsPerStep == 0 ? 0 : 1) }

    /// One level deeper in the evaluator; pair with `leave()`.
    func enter() throws {
        guard depth < budget.maxDepth else {
            throw budgetError(.depth, "evaluation nested more than \(budget.maxDepth) deep (statements, expressions and macro calls)")
        }
        depth += 1
    }

    func leave() { depth -= 1 }

    /// Refuses a string longer than the value budget (charging nothing: callers charge what they built).
    func checkString(bytes: Int) throws {
        guard bytes <= budget.maxStringBytes else {
            throw budgetError(.valueSize, "a string of more than \(budget.maxStringBytes) bytes")
        }
    }

    /// Refuses a list or dict longer than the value budget.
    func checkItems(_ count: Int) throws {
        guard count <= budget.maxItems else {
            throw budgetError(.valueSize, "a list or dict of more than \(budget.maxItems) items")
        }
    }

    /// Refuses text (output, or a capture) beyond its budget.
    func checkText(bytes: Int) throws {
        if captures > 0 { return try checkString(bytes: bytes) }
        guard bytes <= budget.maxOutputBytes else {
            throw budgetError(.output, "more than \(budget.maxOutputBytes) bytes of rendered text")
        }
    }

    /// Refuses a value nested deeper than the depth budget.
    func checkValueDepth(_ level: Int) throws {
        guard level <= budget.maxDepth else {
            throw budgetError(.depth, "a value nested more than \(budget.maxDepth) deep")
        }
    }
}

private func saturatingProduct(_ a: Int, _ b: Int) -> Int {
    let (product, overflow) = max(0, a).multipliedReportingOverflow(by: b)
    return overflow ? .max : product
}

/// A budget error whose position the evaluator fills in.
func budgetError(_ limit: TemplateBudget.Limit, _ message: String) -> ChatTemplateError {
    .budgetExceeded(limit, message, line: 0, column: 0)
}
