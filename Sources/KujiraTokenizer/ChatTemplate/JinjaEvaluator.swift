import Foundation
import KujiraFormats

/// Walks the template AST and produces text; one evaluator per render (it holds the variable scopes and the
/// meter that holds the render to its `TemplateBudget`).
final class JinjaEvaluator {
    /// What a statement asks its enclosing loop to do next.
    enum Flow { case normal, breakLoop, continueLoop }

    /// Innermost scope last; scope 0 holds the render context. `for` bodies and macro calls push a scope,
    /// so `{% set %}` inside them does not leak out (which is why templates use `namespace()`).
    private var scopes: [[String: RuntimeValue]]
    let meter: BudgetMeter

    init(context: [String: RuntimeValue], budget: TemplateBudget = .default) {
        scopes = [context]
        meter = BudgetMeter(budget)
    }

    func render(_ nodes: [Node]) throws -> String {
        var out = ""
        _ = try execute(nodes, into: &out)
        return out
    }

    // MARK: - Variables

    func lookup(_ name: String) -> RuntimeValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        if let builtin = builtinFunction(name) { return .callable(builtin) }
        return .undefined(name)
    }

    private func assign(_ target: AssignTarget, _ value: RuntimeValue) throws {
        switch target {
        case .name(let name):
            scopes[scopes.count - 1][name] = value
        case .tuple(let names):
            let items = try iterate(value)
            guard items.count == names.count else {
                throw runtimeError("cannot unpack \(items.count) values into \(names.count) names")
            }
            for (name, item) in zip(names, items) { scopes[scopes.count - 1][name] = item }
        case .attribute(let objectName, let attribute):
            guard case .namespace(let namespace) = lookup(objectName) else {
                throw runtimeError("cannot assign attribute '\(quoted(attribute, limit: 60))' on '\(quoted(objectName, limit: 60))': "
                                   + "not a namespace")
            }
            // The one place values persist across loop iterations: check what is stored, once.
            try checkNesting(value, level: 1, namespaceFree: true)
            namespace.attributes[attribute] = value
        }
    }

    /// Runs `body` in a fresh innermost scope.
    private func withScope<T>(_ initial: [String: RuntimeValue] = [:], _ body: () throws -> T) rethrows -> T {
        scopes.append(initial)
        defer { scopes.removeLast() }
        return try body()
    }

    // MARK: - Statements

    func execute(_ nodes: [Node], into out: inout String) throws -> Flow {
        for node in nodes {
            let flow = try execute(node, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ node: Node, into out: inout String) throws -> Flow {
        guard let location = node.location else { return try executeStatement(node, into: &out) }
        return try located(location) { try executeStatement(node, into: &out) }
    }

    private func executeStatement(_ node: Node, into out: inout String) throws -> Flow {
        try meter.step()
        try meter.enter()
        defer { meter.leave() }
        switch node {
        case .text(let text):
            try emit(text, into: &out)
        case .output(let expression):
            try emit(try str(try evaluate(expression)), into: &out)
        case .ifChain(let branches, let otherwise):
            for branch in branches where try evaluate(branch.condition).isTruthy {
                return try execute(branch.body, into: &out)
            }
            return try execute(otherwise, into: &out)
        case .forLoop(let loop):
            try located(loop.location) { try runLoop(loop, into: &out) }
        case .set(let target, let expression, let location):
            let value = try evaluate(expression)
            try located(location) { try assign(target, value) }
        case .setBlock(let target, let body, let filters, let location):
            var captured = ""
            _ = try capturing { try execute(body, into: &captured) }
            let value = try applyFilterChain(filters, to: .string(captured))
            try located(location) { try assign(target, value) }
        case .macro(let macro):
            scopes[scopes.count - 1][macro.name] = .callable(makeMacro(macro))
        case .callBlock(let call, let callerParameters, let body):
            let caller = Macro(name: "caller", parameters: callerParameters, body: body)
            let value = try withScope(["caller": .callable(makeMacro(caller))]) { try evaluate(call) }
            try emit(try str(value), into: &out)
        case .filterBlock(let filters, let body):
            var captured = ""
            _ = try capturing { try execute(body, into: &captured) }
            try emit(try str(try applyFilterChain(filters, to: .string(captured))), into: &out)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    /// Adds a source position to position-less runtime and budget errors thrown by `body`.
    private func located<T>(_ location: SourceLocation, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch ChatTemplateError.runtime(let message, line: 0, column: 0) {
            throw ChatTemplateError.runtime(message, line: location.line, column: location.column)
        } catch ChatTemplateError.budgetExceeded(let limit, let message, line: 0, column: 0) {
            throw ChatTemplateError.budgetExceeded(limit, message, line: location.line, column: location.column)
        }
    }

    private func applyFilterChain(_ filters: [Expr], to value: RuntimeValue) throws -> RuntimeValue {
        var result = value
        for filter in filters {
            guard case .filter(_, let name, let arguments) = filter.kind else { continue }
            let evaluated = try evaluateArguments(arguments)
            result = try located(filter.location) { try applyFilter(name, to: result, evaluated) }
        }
        return result
    }

    private func runLoop(_ loop: ForLoop, into out: inout String) throws {
        var items = try iterate(try evaluate(loop.iterable))
        if let condition = loop.condition {
            items = try items.filter { item in
                try withScope {
                    try assign(loop.target, item)
                    return try evaluate(condition).isTruthy
                }
            }
        }
        if items.isEmpty {
            _ = try execute(loop.otherwise, into: &out)
            return
        }
        let count = items.count
        for (index, item) in items.enumerated() {
            try meter.step()
            var info = RuntimeObject()
            info["index"] = .int(index + 1)
            info["index0"] = .int(index)
            info["revindex"] = .int(count - index)
            info["revindex0"] = .int(count - index - 1)
            info["first"] = .bool(index == 0)
            info["last"] = .bool(index == count - 1)
            info["length"] = .int(count)
            info["depth"] = .int(1)
            info["depth0"] = .int(0)
            info["previtem"] = index > 0 ? items[index - 1] : .undefined("loop.previtem")
            info["nextitem"] = index + 1 < count ? items[index + 1] : .undefined("loop.nextitem")
            info["cycle"] = .callable(Callable(name: "loop.cycle") { arguments in
                guard !arguments.positional.isEmpty else { throw runtimeError("loop.cycle needs at least one value") }
                return arguments.positional[index % arguments.positional.count]
            })
            let flow = try withScope(["loop": .object(info)]) {
                try assign(loop.target, item)
                return try execute(loop.body, into: &out)
            }
            if flow == .breakLoop { break }
        }
    }

    /// Python iteration: lists, dict keys, string characters; undefined iterates as empty. Charges the items.
    func iterate(_ value: RuntimeValue) throws -> [RuntimeValue] {
        switch value {
        case .array(let items):
            try meter.charge(items: items.count)
            return items
        case .object(let object):
            try meter.charge(items: object.count)
            return object.keys.map { .string($0) }
        case .namespace(let namespace):
            try meter.charge(items: namespace.attributes.count)
            return namespace.attributes.keys.map { .string($0) }
        case .string(let s):
            try meter.charge(bytes: s.utf8.count)
            let count = s.unicodeScalars.count
            try meter.checkItems(count)
            try meter.charge(newValues: count)
            return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw runtimeError("'\(value.typeName)' object is not iterable")
        }
    }

    private func makeMacro(_ macro: Macro) -> Callable {
        Callable(name: macro.name) { [unowned self] arguments in
            // Recursion is bounded by the depth budget: each call is a level, as are the statements of its body.
            try self.meter.enter()
            defer { self.meter.leave() }
            var frame: [String: RuntimeValue] = [:]
            for (position, parameter) in macro.parameters.enumerated() {
                if let value = arguments.value(position, parameter.name) {
                    frame[parameter.name] = value
                } else if let defaultValue = parameter.defaultValue {
                    frame[parameter.name] = try self.evaluate(defaultValue)
                } else {
                    frame[parameter.name] = .undefined(parameter.name)
                }
            }
            if arguments.positional.count > macro.parameters.count {
                let varargs = RuntimeValue.array(Array(arguments.positional.dropFirst(macro.parameters.count)))
                try self.checkNesting(varargs)
                frame["varargs"] = varargs
            }
            var out = ""
            _ = try self.capturing { try self.withScope(frame) { try self.execute(macro.body, into: &out) } }
            return .string(out)
        }
    }

    // MARK: - Expressions

    func evaluate(_ expression: Expr) throws -> RuntimeValue {
        try located(expression.location) {
            try meter.step()
            try meter.enter()
            defer { meter.leave() }
            return try evaluateKind(expression)
        }
    }

    private func evaluateKind(_ expression: Expr) throws -> RuntimeValue {
        switch expression.kind {
        case .literal(let value):
            return RuntimeValue(value)
        case .name(let name):
            try meter.charge(bytes: name.utf8.count)
            return lookup(name)
        case .list(let items):
            let list = RuntimeValue.array(try items.map(evaluate))
            try checkNesting(list)
            return try produced(list)
        case .dict(let pairs):
            var object = RuntimeObject()
            for pair in pairs {
                guard case .string(let key) = try evaluate(pair.key) else {
                    throw runtimeError("dict keys must be strings in this engine")
                }
                try meter.charge(bytes: key.utf8.count)
                object[key] = try evaluate(pair.value)
            }
            try checkNesting(.object(object))
            return try produced(.object(object))
        case .attribute(let base, let name):
            return try attribute(of: try evaluate(base), name)
        case .item(let base, let key):
            return try item(of: try evaluate(base), try evaluate(key))
        case .slice(let base, let start, let stop, let step):
            return try produced(try slice(try evaluate(base), start: try start.map(evaluate), stop: try stop.map(evaluate),
                                          step: try step.map(evaluate)))
        case .unary(let op, let operand):
            let value = try evaluate(operand)
            switch (op, value) {
            case ("-", .int(let i)):
                let (negated, overflow) = 0.subtractingReportingOverflow(i)
                guard !overflow else { throw runtimeError("integer overflow in unary '-'") }
                return .int(negated)
            case ("-", .double(let d)): return .double(-d)
            case ("-", .bool(let b)): return .int(b ? -1 : 0)
            case ("+", .int), ("+", .double): return value
            default: throw runtimeError("bad operand type for unary \(op): '\(value.typeName)'")
            }
        case .binary(let op, let left, let right):
            return try binaryOperation(op, try evaluate(left), try evaluate(right))
        case .and(let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? try evaluate(right) : value
        case .or(let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? value : try evaluate(right)
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .compare(let first, let operations):
            var left = try evaluate(first)
            for operation in operations {
                let right = try evaluate(operation.rhs)
                guard try compare(operation.op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .test(let operand, let name, let arguments, let negated):
            let value = try evaluate(operand)
            let result = try applyTest(name, to: value, try evaluateArguments(arguments))
            return .bool(result != negated)
        case .filter(let operand, let name, let arguments):
            let value = try evaluate(operand)
            return try applyFilter(name, to: value, try evaluateArguments(arguments))
        case .call(let callee, let arguments):
            return try produced(try call(callee, try evaluateArguments(arguments)))
        case .conditional(let then, let condition, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            return try otherwise.map(evaluate) ?? .undefined("conditional expression")
        }
    }

    func evaluateArguments(_ arguments: Expr.Arguments) throws -> CallArguments {
        CallArguments(positional: try arguments.positional.map(evaluate),
                      keyword: try arguments.keyword.map { ($0.name, try evaluate($0.value)) })
    }

    private func call(_ callee: Expr, _ arguments: CallArguments) throws -> RuntimeValue {
        if case .attribute(let base, let name) = callee.kind {
            let receiver = try evaluate(base)
            if let method = try boundMethod(receiver, name) { return try method.body(arguments) }
            let value = try attribute(of: receiver, name)
            if case .callable(let function) = value { return try function.body(arguments) }
            throw runtimeError("'\(receiver.typeName)' object has no method '\(quoted(name, limit: 60))'")
        }
        let value = try evaluate(callee)
        switch value {
        case .callable(let function): return try function.body(arguments)
        case .undefined(let name): throw runtimeError("'\(quoted(name, limit: 60))' is undefined")
        default: throw runtimeError("'\(value.typeName)' object is not callable")
        }
    }

    /// `value.name`: dict keys and namespace attributes; Jinja's default Undefined errors on any attribute.
    func attribute(of value: RuntimeValue, _ name: String) throws -> RuntimeValue {
        try meter.charge(bytes: name.utf8.count)
        switch value {
        case .undefined(let missing):
            throw runtimeError("'\(quoted(missing, limit: 60))' is undefined (while reading attribute '\(quoted(name, limit: 60))')")
        case .object(let object):
            if let found = object[name] { return found }
        case .namespace(let namespace):
            if let found = namespace.attributes[name] { return found }
        default:
            break
        }
        if let method = try boundMethod(value, name) { return .callable(method) }
        return .undefined("\(value.typeName) object has no attribute '\(quoted(name, limit: 60))'")
    }

    /// `value[key]`: out-of-range indices and missing keys give undefined, as in Jinja.
    func item(of value: RuntimeValue, _ key: RuntimeValue) throws -> RuntimeValue {
        switch (value, key) {
        case (.undefined(let missing), _):
            throw runtimeError("'\(quoted(missing, limit: 60))' is undefined (while reading an item)")
        case (.object(let object), .string(let name)):
            try meter.charge(bytes: name.utf8.count)
            return object[name] ?? .undefined("dict object has no key '\(quoted(name, limit: 60))'")
        case (.namespace, .string(let name)):
            return try attribute(of: value, name)
        case (.array(let items), _):
            guard let index = integerIndex(key), let position = normalizedIndex(index, count: items.count) else {
                return .undefined("list index \(describe(key)) out of range")
            }
            return items[position]
        case (.string(let s), _):
            try meter.charge(bytes: s.utf8.count)
            let scalars = Array(s.unicodeScalars)
            guard let index = integerIndex(key), let position = normalizedIndex(index, count: scalars.count) else {
                return .undefined("string index \(describe(key)) out of range")
            }
            return .string(String(scalars[position]))
        default:
            return .undefined("\(value.typeName) object has no item \(describe(key))")
        }
    }

    private func integerIndex(_ key: RuntimeValue) -> Int? {
        switch key {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    private func normalizedIndex(_ index: Int, count: Int) -> Int? {
        let position = index < 0 ? index + count : index
        return position >= 0 && position < count ? position : nil
    }

    /// Python slicing of lists and strings.
    private func slice(_ value: RuntimeValue, start: RuntimeValue?, stop: RuntimeValue?,
                       step: RuntimeValue?) throws -> RuntimeValue
    {
        func bound(_ v: RuntimeValue?) throws -> Int? {
            guard let v, !(v.isNone) else { return nil }
            guard let i = integerIndex(v) else { throw runtimeError("slice indices must be integers or None") }
            return i
        }
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw runtimeError("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            var lower = try bound(start)
            var upper = try bound(stop)
            if stepValue > 0 {
                lower = min(max((lower ?? 0) < 0 ? (lower ?? 0) + count : (lower ?? 0), 0), count)
                upper = min(max((upper ?? count) < 0 ? (upper ?? count) + count : (upper ?? count), 0), count)
                return Array(stride(from: lower ?? 0, to: upper ?? count, by: stepValue))
            }
            let first = lower.map { $0 < 0 ? max($0 + count, -1) : min($0, count - 1) } ?? count - 1
            let last = upper.map { $0 < 0 ? max($0 + count, -1) : min($0, count - 1) } ?? -1
            return Array(stride(from: first, to: last, by: stepValue))
        }
        switch value {
        case .array(let items):
            try meter.charge(items: items.count)
            return .array(try indices(items.count).map { items[$0] })
        case .string(let s):
            try meter.charge(bytes: s.utf8.count)
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for index in try indices(scalars.count) { out.append(scalars[index]) }
            return .string(String(out))
        case .undefined(let missing):
            throw runtimeError("'\(quoted(missing, limit: 60))' is undefined (while slicing)")
        default:
            throw runtimeError("'\(value.typeName)' object is not subscriptable")
        }
    }

    private func compare(_ op: String, _ left: RuntimeValue, _ right: RuntimeValue) throws -> Bool {
        switch op {
        case "==": return try equals(left, right)
        case "!=": return try !equals(left, right)
        case "<": return try less(left, right)
        case ">": return try less(right, left)
        case "<=": return try !less(right, left)
        case ">=": return try !less(left, right)
        case "in": return try contains(right, left)
        case "not in": return try !contains(right, left)
        default: throw runtimeError("unknown comparison '\(op)'")
        }
    }

    /// Python `needle in container`.
    func contains(_ container: RuntimeValue, _ needle: RuntimeValue) throws -> Bool {
        switch container {
        case .string(let haystack):
            guard case .string(let part) = needle else {
                throw runtimeError("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            try meter.charge(bytes: haystack.utf8.count + part.utf8.count)
            return part.isEmpty || ScalarSearch(part).first(in: Array(haystack.unicodeScalars)) != nil
        case .array(let items): return try items.contains { try equals($0, needle) }
        case .object(let object):
            guard case .string(let key) = needle else { return false }
            try meter.charge(bytes: key.utf8.count)
            return object[key] != nil
        case .namespace(let namespace):
            guard case .string(let key) = needle else { return false }
            try meter.charge(bytes: key.utf8.count)
            return namespace.attributes[key] != nil
        case .undefined: return false
        default: throw runtimeError("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

extension RuntimeValue {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
