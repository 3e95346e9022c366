import KujiraFormats
/// Recursive-descent parser from tokens to the template AST, with Jinja's operator precedence.
struct JinjaParser {
    private let tokens: [JinjaToken]
    private var index = 0
    private var loopDepth = 0
    /// Nesting of expressions and blocks, bounded by `maximumDepth` so hostile templates cannot overflow the stack.
    private var nesting = 0
    /// The budget's depth: bounds `nesting` and the height of every expression tree (chains like `x|f|f|f`,
    /// `a.b.b.b` or `1+1+1` are parsed by loops but evaluated by recursion).
    private let maximumDepth: Int

    static func parse(_ source: String, budget: TemplateBudget = .default) throws -> [Node] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source), maximumDepth: budget.maxDepth)
        let (body, _) = try parser.parseBody(until: [])
        return body
    }

    private init(tokens: [JinjaToken], maximumDepth: Int) {
        self.tokens = tokens
        self.maximumDepth = maximumDepth
    }

    // MARK: - Token helpers

    private var current: JinjaToken { tokens[min(index, tokens.count - 1)] }
    private var peekNext: JinjaToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> JinjaToken {
        let token = current
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func error(_ message: String, at token: JinjaToken? = nil) -> ChatTemplateError {
        let location = (token ?? current).location
        return .syntax(message, line: location.line, column: location.column)
    }

    private func describe(_ token: JinjaToken) -> String {
        switch token.kind {
        case .text: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(quoted(n, limit: 60))'"
        case .string: return "a string"
        case .integer, .float: return "a number"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func skipOp(_ op: String) -> Bool {
        guard isOp(op) else { return false }
        _ = advance()
        return true
    }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        _ = advance()
        return true
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw error("expected '\(op)', found \(describe(current))") }
    }

    private mutating func expectName() throws -> String {
        guard case .name(let name) = current.kind else {
            throw error("expected a name, found \(describe(current))")
        }
        _ = advance()
        return name
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw error("expected '%}', found \(describe(current))") }
        _ = advance()
    }

    // MARK: - Statements

    /// Parses nodes until a block tag named in `endTags`; returns the nodes and that tag's name
    /// (the tag name is consumed, the rest of the tag is not).
    private mutating func parseBody(until endTags: Set<String>) throws -> ([Node], String?) {
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .text(let text):
                _ = advance()
                nodes.append(.text(text))
            case .variableBegin:
                _ = advance()
                let expression = try parseExpression()
                guard current.kind == .variableEnd else {
                    throw error("expected '}}', found \(describe(current))")
                }
                _ = advance()
                nodes.append(.output(expression))
            case .blockBegin:
                _ = advance()
                guard case .name(let tag) = current.kind else {
                    throw error("expected a tag name after '{%', found \(describe(current))")
                }
                if endTags.contains(tag) {
                    _ = advance()
                    return (nodes, tag)
                }
                if tag.hasPrefix("end") || tag == "elif" || tag == "else" {
                    let expected = endTags.isEmpty ? "no closing tag here"
                        : "expected " + endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw error("unexpected '\(quoted(tag, limit: 60))': \(expected)")
                }
                nodes.append(try parseStatement(tag))
            case .eof:
                if endTags.isEmpty { return (nodes, nil) }
                let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                throw error("unexpected end of template: missing \(expected)", at: token)
            default:
                throw error("unexpected \(describe(token))", at: token)
            }
        }
    }

    private mutating func parseStatement(_ tag: String) throws -> Node {
        try nested { try $0.parseStatementBody(tag) }
    }

    private mutating func parseStatementBody(_ tag: String) throws -> Node {
        let tagToken = advance()
        switch tag {
        case "if": return try parseIf()
        case "for": return try parseFor(location: tagToken.location)
        case "set": return try parseSet(location: tagToken.location)
        case "macro": return try parseMacro()
        case "call": return try parseCallBlock()
        case "filter":
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters: filters, body: body)
        case "generation":
            // transformers' AssistantTracker marks assistant text; rendering just outputs the body.
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return .filterBlock(filters: [], body: body)
        case "break", "continue":
            guard loopDepth > 0 else { throw error("'\(tag)' outside of a for loop", at: tagToken) }
            try expectBlockEnd()
            return tag == "break" ? .breakLoop : .continueLoop
        default:
            throw error("unsupported tag '\(quoted(tag, limit: 60))'", at: tagToken)
        }
    }

    private mutating func parseIf() throws -> Node {
        var branches: [(condition: Expr, body: [Node])] = []
        var condition = try parseExpression()
        while true {
            try expectBlockEnd()
            let (body, tag) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            if tag == "elif" {
                condition = try parseExpression()
                continue
            }
            if tag == "else" {
                try expectBlockEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .ifChain(branches: branches, otherwise: otherwise)
            }
            try expectBlockEnd()
            return .ifChain(branches: branches, otherwise: [])
        }
    }

    private mutating func parseFor(location: SourceLocation) throws -> Node {
        let target = try parseAssignTarget(allowAttribute: false)
        guard skipName("in") else { throw error("expected 'in' in for loop, found \(describe(current))") }
        let iterable = try parseOr()
        var condition: Expr?
        if skipName("if") { condition = try parseExpression() }
        if isName("recursive") { throw error("recursive for loops are not supported") }
        try expectBlockEnd()
        loopDepth += 1
        let (body, tag) = try parseBody(until: ["else", "endfor"])
        loopDepth -= 1
        var otherwise: [Node] = []
        if tag == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseBody(until: ["endfor"])
        }
        try expectBlockEnd()
        return .forLoop(ForLoop(target: target, iterable: iterable, condition: condition, body: body,
                                otherwise: otherwise, location: location))
    }

    private mutating func parseAssignTarget(allowAttribute: Bool) throws -> AssignTarget {
        let parenthesized = skipOp("(")
        let first = try expectName()
        if allowAttribute, !parenthesized, skipOp(".") {
            return .attribute(object: first, attribute: try expectName())
        }
        var names = [first]
        while skipOp(",") {
            guard case .name = current.kind else { break }
            names.append(try expectName())
        }
        if parenthesized { try expectOp(")") }
        return names.count == 1 && !parenthesized ? .name(first) : .tuple(names)
    }

    private mutating func parseSet(location: SourceLocation) throws -> Node {
        let target = try parseAssignTarget(allowAttribute: true)
        if skipOp("=") {
            var value = try parseExpression()
            if isOp(",") {
                // `{% set a, b = 1, 2 %}`: an unparenthesized tuple.
                var items = [value]
                while skipOp(",") { items.append(try parseExpression()) }
                value = try make(.list(items), at: value.location)
            }
            try expectBlockEnd()
            return .set(target, value, location)
        }
        let filters = isOp("|") ? try parseFilterChain() : []
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target, body: body, filters: filters, location)
    }

    /// `name(args) | name2 | ...` as filter nodes applied to a placeholder `name` expression `__body__`.
    private mutating func parseFilterChain() throws -> [Expr] {
        var filters: [Expr] = []
        _ = skipOp("|")
        repeat {
            let location = current.location
            let name = try expectName()
            let arguments = isOp("(") ? try parseCallArguments() : Expr.Arguments()
            let placeholder = Expr(kind: .name("__body__"), location: location)
            filters.append(try make(.filter(placeholder, name: name, arguments: arguments), at: location))
        } while skipOp("|")
        return filters
    }

    private mutating func parseParameters() throws -> [Macro.Parameter] {
        var parameters: [Macro.Parameter] = []
        try expectOp("(")
        while !isOp(")") {
            let name = try expectName()
            let defaultValue = skipOp("=") ? try parseExpression() : nil
            parameters.append(Macro.Parameter(name: name, defaultValue: defaultValue))
            if !skipOp(",") { break }
        }
        try expectOp(")")
        return parameters
    }

    private mutating func parseMacro() throws -> Node {
        let name = try expectName()
        let parameters = try parseParameters()
        try expectBlockEnd()
        let savedDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(until: ["endmacro"])
        loopDepth = savedDepth
        try expectBlockEnd()
        return .macro(Macro(name: name, parameters: parameters, body: body))
    }

    private mutating func parseCallBlock() throws -> Node {
        let callerParameters = isOp("(") ? try parseParameters() : []
        let call = try parseExpression()
        guard case .call = call.kind else { throw error("expected a macro call after 'call'") }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(call: call, callerParameters: callerParameters, body: body)
    }

    // MARK: - Expressions (lowest to highest precedence)

    /// Runs `body` one nesting level deeper, refusing templates nested beyond `maximumDepth`.
    private mutating func nested<T>(_ body: (inout JinjaParser) throws -> T) throws -> T {
        guard nesting < maximumDepth else {
            throw depthError("expressions or blocks nested more than \(maximumDepth) deep", at: current.location)
        }
        nesting += 1
        defer { nesting -= 1 }
        return try body(&self)
    }

    /// A composite expression node, refused when its tree is higher than `maximumDepth`.
    private func make(_ kind: Expr.Kind, at location: SourceLocation) throws -> Expr {
        let expression = Expr(kind: kind, location: location)
        guard expression.depth <= maximumDepth else {
            throw depthError("an expression more than \(maximumDepth) operations deep (a chain of filters, attributes, "
                             + "calls or operators?)", at: location)
        }
        return expression
    }

    private func depthError(_ message: String, at location: SourceLocation) -> ChatTemplateError {
        .budgetExceeded(.depth, message, line: location.line, column: location.column)
    }

    mutating func parseExpression() throws -> Expr {
        try nested { try $0.parseConditional() }
    }

    private mutating func parseConditional() throws -> Expr {
        var expression = try parseOr()
        while isName("if") {
            let location = advance().location
            let condition = try parseOr()
            let otherwise = skipName("else") ? try parseExpression() : nil
            expression = try make(.conditional(then: expression, condition: condition, otherwise: otherwise), at: location)
        }
        return expression
    }

    private mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let location = advance().location
            left = try make(.or(left, try parseAnd()), at: location)
        }
        return left
    }

    private mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while isName("and") {
            let location = advance().location
            left = try make(.and(left, try parseNot()), at: location)
        }
        return left
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            let location = advance().location
            return try make(.not(try nested { try $0.parseNot() }), at: location)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expr {
        let left = try parseMath1()
        var operations: [(op: String, rhs: Expr)] = []
        while true {
            if case .op(let op) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                _ = advance()
                operations.append((op, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                operations.append(("in", try parseMath1()))
            } else if isName("not"), peekNext.kind == .name("in") {
                _ = advance()
                _ = advance()
                operations.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? left : try make(.compare(left, operations), at: left.location)
    }

    private mutating func parseBinaryLevel(_ ops: [String], next: (inout JinjaParser) throws -> Expr) throws -> Expr {
        var left = try next(&self)
        while case .op(let op) = current.kind, ops.contains(op) {
            let location = advance().location
            left = try make(.binary(op, left, try next(&self)), at: location)
        }
        return left
    }

    private mutating func parseMath1() throws -> Expr {
        try parseBinaryLevel(["+", "-"]) { try $0.parseConcat() }
    }

    private mutating func parseConcat() throws -> Expr {
        try parseBinaryLevel(["~"]) { try $0.parseMath2() }
    }

    private mutating func parseMath2() throws -> Expr {
        try parseBinaryLevel(["*", "/", "//", "%"]) { try $0.parsePow() }
    }

    private mutating func parsePow() throws -> Expr {
        try parseBinaryLevel(["**"]) { try $0.parseUnary(withFilter: true) }
    }

    private mutating func parseUnary(withFilter: Bool) throws -> Expr {
        var node: Expr
        if case .op(let op) = current.kind, op == "-" || op == "+" {
            let location = advance().location
            node = try make(.unary(op, try nested { try $0.parseUnary(withFilter: false) }), at: location)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        return withFilter ? try parseFilterExpression(node) : node
    }

    private mutating func parsePrimary() throws -> Expr {
        let token = advance()
        let location = token.location
        switch token.kind {
        case .name(let name):
            switch name {
            case "true", "True": return Expr(kind: .literal(.bool(true)), location: location)
            case "false", "False": return Expr(kind: .literal(.bool(false)), location: location)
            case "none", "None": return Expr(kind: .literal(.none), location: location)
            default: return Expr(kind: .name(name), location: location)
            }
        case .string(var text):
            while case .string(let more) = current.kind {
                text += more
                _ = advance()
            }
            return Expr(kind: .literal(.string(text)), location: location)
        case .integer(let value): return Expr(kind: .literal(.int(value)), location: location)
        case .float(let value): return Expr(kind: .literal(.double(value)), location: location)
        case .op("("):
            if skipOp(")") { return Expr(kind: .list([]), location: location) }
            let first = try parseExpression()
            guard isOp(",") else {
                try expectOp(")")
                return first
            }
            var items = [first]
            while skipOp(",") {
                if isOp(")") { break }
                items.append(try parseExpression())
            }
            try expectOp(")")
            return try make(.list(items), at: location)
        case .op("["):
            var items: [Expr] = []
            while !isOp("]") {
                items.append(try parseExpression())
                if !skipOp(",") { break }
            }
            try expectOp("]")
            return try make(.list(items), at: location)
        case .op("{"):
            var pairs: [(key: Expr, value: Expr)] = []
            while !isOp("}") {
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
                if !skipOp(",") { break }
            }
            try expectOp("}")
            return try make(.dict(pairs), at: location)
        default:
            throw error("unexpected \(describe(token)) in expression", at: token)
        }
    }

    private mutating func parsePostfix(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if isOp(".") {
                let location = advance().location
                switch current.kind {
                case .name(let name):
                    _ = advance()
                    node = try make(.attribute(node, name), at: location)
                case .integer(let value):
                    _ = advance()
                    node = try make(.item(node, Expr(kind: .literal(.int(value)), location: location)), at: location)
                default:
                    throw error("expected an attribute name after '.', found \(describe(current))")
                }
            } else if isOp("[") {
                let location = advance().location
                node = try parseSubscript(node, location: location)
            } else if isOp("(") {
                let location = current.location
                node = try make(.call(node, try parseCallArguments()), at: location)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ object: Expr, location: SourceLocation) throws -> Expr {
        var start: Expr?
        if !isOp(":") { start = try parseExpression() }
        guard skipOp(":") else {
            try expectOp("]")
            guard let start else { throw error("empty subscript") }
            return try make(.item(object, start), at: location)
        }
        var stop: Expr?
        var step: Expr?
        if !isOp("]"), !isOp(":") { stop = try parseExpression() }
        if skipOp(":"), !isOp("]") { step = try parseExpression() }
        try expectOp("]")
        return try make(.slice(object, start: start, stop: stop, step: step), at: location)
    }

    private mutating func parseCallArguments() throws -> Expr.Arguments {
        try expectOp("(")
        var arguments = Expr.Arguments()
        while !isOp(")") {
            if isOp("*") || isOp("**") { throw error("*args and **kwargs in calls are not supported") }
            if case .name(let name) = current.kind, peekNext.kind == .op("=") {
                _ = advance()
                _ = advance()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                guard arguments.keyword.isEmpty else { throw error("positional argument after keyword argument") }
                arguments.positional.append(try parseExpression())
            }
            if !skipOp(",") { break }
        }
        try expectOp(")")
        return arguments
    }

    private mutating func parseFilterExpression(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if isOp("|") {
                let location = advance().location
                let name = try expectName()
                let arguments = isOp("(") ? try parseCallArguments() : Expr.Arguments()
                node = try make(.filter(node, name: name, arguments: arguments), at: location)
            } else if isName("is") {
                let location = advance().location
                let negated = skipName("not")
                let name = try expectName()
                var arguments = Expr.Arguments()
                if isOp("(") {
                    arguments = try parseCallArguments()
                } else if startsTestArgument() {
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                node = try make(.test(node, name: name, arguments: arguments, negated: negated), at: location)
            } else if isOp("(") {
                let location = current.location
                node = try make(.call(node, try parseCallArguments()), at: location)
            } else {
                return node
            }
        }
    }

    /// Jinja allows one argument without parentheses: `x is divisibleby 3`, `x is sameas false`.
    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and"].contains(name)
        case .string, .integer, .float: return true
        case .op(let op): return op == "[" || op == "{"
        default: return false
        }
    }
}
