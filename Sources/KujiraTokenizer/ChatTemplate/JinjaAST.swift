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

    var kind: Kind
    var location: SourceLocation
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
