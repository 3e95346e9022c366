/// An expression node with the position of its first token (for error messages).
struct Expr: Sendable {
    indirect enum Kind: Sendable {
        case literal(JinjaValue)
        case name(String)
        case list([Expr])
        case dict([(key: Expr, value: Expr)])
        case attribute(Expr, String)
        case item(Expr, Expr)
        case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
        case unary(String, Expr)
        case binary(String, Expr, Expr)
        case and(Expr, Expr)
        case or(Expr, Expr)
        case not(Expr)
        case compare(Expr, [(op: String, rhs: Expr)])
        case test(Expr, name: String, arguments: Arguments, negated: Bool)
        case filter(Expr, name: String, arguments: Arguments)
        case call(Expr, Arguments)
        case conditional(then: Expr, condition: Expr, otherwise: Expr?)
    }

    /// Call arguments as written: positional, then `name=value`.
    struct Arguments: Sendable {
        var positional: [Expr] = []
        var keyword: [(name: String, value: Expr)] = []
    }

    let kind: Kind
    let location: SourceLocation
    /// Height of the tree under this node (a leaf is 1): how deep evaluating it recurses.
    let depth: Int

    init(kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
        depth = 1 + kind.children.reduce(0) { max($0, $1.depth) }
    }
}

extension Expr.Kind {
    /// The sub-expressions of a node.
    var children: [Expr] {
        switch self {
        case .literal, .name: return []
        case .list(let items): return items
        case .dict(let pairs): return pairs.flatMap { [$0.key, $0.value] }
        case .attribute(let base, _): return [base]
        case .item(let base, let key): return [base, key]
        case .slice(let base, let start, let stop, let step): return [base] + [start, stop, step].compactMap { $0 }
        case .unary(_, let operand), .not(let operand): return [operand]
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right): return [left, right]
        case .compare(let first, let operations): return [first] + operations.map(\.rhs)
        case .test(let operand, _, let arguments, _), .filter(let operand, _, let arguments):
            return [operand] + arguments.all
        case .call(let callee, let arguments): return [callee] + arguments.all
        case .conditional(let then, let condition, let otherwise): return [then, condition] + (otherwise.map { [$0] } ?? [])
        }
    }
}

extension Expr.Arguments {
    var all: [Expr] { positional + keyword.map(\.value) }
}

/// Where `{% set %}` or a `for` loop stores a value.
enum AssignTarget: Sendable {
    case name(String)
    case tuple([String])
    case attribute(object: String, attribute: String)
}

/// A statement of the template body.
indirect enum Node: Sendable {
    case text(String)
    case output(Expr)
    case ifChain(branches: [(condition: Expr, body: [Node])], otherwise: [Node])
    case forLoop(ForLoop)
    case set(AssignTarget, Expr, SourceLocation)
    case setBlock(AssignTarget, body: [Node], filters: [Expr], SourceLocation)
    case macro(Macro)
    case callBlock(call: Expr, callerParameters: [Macro.Parameter], body: [Node])
    case filterBlock(filters: [Expr], body: [Node])
    case breakLoop
    case continueLoop
}

/// `{% for target in iterable [if condition] %}body{% else %}otherwise{% endfor %}`.
struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: Expr
    var condition: Expr?
    var body: [Node]
    var otherwise: [Node]
    var location: SourceLocation
}

/// `{% macro name(parameters) %}body{% endmacro %}`.
struct Macro: Sendable {
    /// A parameter with an optional default expression.
    struct Parameter: Sendable {
        var name: String
        var defaultValue: Expr?
    }

    var name: String
    var parameters: [Parameter]
    var body: [Node]
}

extension Node {
    /// Where the statement starts, when the AST keeps it (for positions in budget and runtime errors).
    var location: SourceLocation? {
        switch self {
        case .output(let expression): return expression.location
        case .ifChain(let branches, _): return branches.first?.condition.location
        case .forLoop(let loop): return loop.location
        case .set(_, _, let location), .setBlock(_, _, _, let location): return location
        case .callBlock(let call, _, _): return call.location
        case .filterBlock(let filters, _): return filters.first?.location
        case .text, .macro, .breakLoop, .continueLoop: return nil
        }
    }
}
