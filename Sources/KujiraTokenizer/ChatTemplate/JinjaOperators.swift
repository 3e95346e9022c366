import Foundation
import KujiraFormats

/// Python arithmetic on template values and the global functions transformers' environment provides.
extension JinjaEvaluator {
    /// `left op right`; string and list results are checked against the value-size budget (repetition and
    /// concatenation before anything is allocated).
    func binaryOperation(_ op: String, _ left: RuntimeValue, _ right: RuntimeValue) throws -> RuntimeValue {
        if op == "~" {
            let (a, b) = (try str(left), try str(right))
            try meter.checkString(bytes: a.utf8.count + b.utf8.count)
            return try produced(.string(a + b))
        }
        if case .undefined(let name) = left { throw runtimeError("'\(quoted(name, limit: 60))' is undefined") }
        if case .undefined(let name) = right { throw runtimeError("'\(quoted(name, limit: 60))' is undefined") }
        switch (op, left, right) {
        case ("+", .string(let a), .string(let b)):
            try meter.checkString(bytes: a.utf8.count + b.utf8.count)
            return try produced(.string(a + b))
        case ("+", .array(let a), .array(let b)):
            try meter.checkItems(a.count + b.count)
            return try produced(.array(a + b))
        case ("*", .string(let s), _), ("*", _, .string(let s)):
            guard let count = integerOperand(left.isString ? right : left) else { break }
            try meter.checkString(bytes: try repetitionSize(count, s.utf8.count))
            return try produced(.string(String(repeating: s, count: max(0, count))))
        case ("*", .array(let items), _):
            guard let count = integerOperand(right) else { break }
            try meter.checkItems(try repetitionSize(count, items.count))
            return try produced(.array(Array(repeating: items, count: max(0, count)).flatMap { $0 }))
        case ("%", .string(let format), _):
            return try produced(.string(try percentFormat(format, right)))
        default:
            break
        }
        if let a = integerOperand(left), let b = integerOperand(right) {
            return try integerOperation(op, a, b)
        }
        if let a = left.number, let b = right.number, !left.isString, !right.isString {
            return try floatOperation(op, a, b)
        }
        throw runtimeError("unsupported operand type(s) for \(op): '\(left.typeName)' and '\(right.typeName)'")
    }

    private func integerOperand(_ value: RuntimeValue) -> Int? {
        switch value {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    private func integerOperation(_ op: String, _ a: Int, _ b: Int) throws -> RuntimeValue {
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws -> RuntimeValue {
            guard !result.overflow else { throw runtimeError("integer overflow in '\(op)'") }
            return .int(result.partialValue)
        }
        switch op {
        case "+": return try checked(a.addingReportingOverflow(b))
        case "-": return try checked(a.subtractingReportingOverflow(b))
        case "*": return try checked(a.multipliedReportingOverflow(by: b))
        case "/":
            guard b != 0 else { throw runtimeError("division by zero") }
            return .double(Double(a) / Double(b))
        case "//", "%":
            guard b != 0 else { throw runtimeError("integer division or modulo by zero") }
            guard !(a == Int.min && b == -1) else { throw runtimeError("integer overflow in '\(op)'") }
            var quotient = a / b
            var remainder = a % b
            if remainder != 0, (remainder < 0) != (b < 0) {
                quotient -= 1
                remainder += b
            }
            return .int(op == "//" ? quotient : remainder)
        case "**":
            guard b >= 0 else { return .double(pow(Double(a), Double(b))) }
            // Square-and-multiply: at most ~64 steps before overflow, whatever the exponent.
            var result = 1
            var base = a
            var exponent = b
            while exponent > 0 {
                if exponent & 1 == 1 {
                    let (product, overflow) = result.multipliedReportingOverflow(by: base)
                    guard !overflow else { throw runtimeError("integer overflow in '**'") }
                    result = product
                }
                exponent >>= 1
                if exponent > 0 {
                    let (square, overflow) = base.multipliedReportingOverflow(by: base)
                    guard !overflow else { throw runtimeError("integer overflow in '**'") }
                    base = square
                }
            }
            return .int(result)
        default:
            throw runtimeError("unknown operator '\(op)'")
        }
    }

    private func floatOperation(_ op: String, _ a: Double, _ b: Double) throws -> RuntimeValue {
        switch op {
        case "+": return .double(a + b)
        case "-": return .double(a - b)
        case "*": return .double(a * b)
        case "/":
            guard b != 0 else { throw runtimeError("float division by zero") }
            return .double(a / b)
        case "//":
            guard b != 0 else { throw runtimeError("float floor division by zero") }
            return .double((a / b).rounded(.down))
        case "%":
            guard b != 0 else { throw runtimeError("float modulo by zero") }
            return .double(a - b * (a / b).rounded(.down))
        case "**": return .double(pow(a, b))
        default: throw runtimeError("unknown operator '\(op)'")
        }
    }

    /// Python's `format % values` for the common conversions (%s %r %d %i %f %%), within the value budget.
    private func percentFormat(_ format: String, _ values: RuntimeValue) throws -> String {
        let arguments: [RuntimeValue]
        if case .array(let items) = values { arguments = items } else { arguments = [values] }
        var next = 0
        var out = ""
        var scalars = format.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "%" else { out.unicodeScalars.append(scalar); continue }
            guard let conversion = scalars.next() else { throw runtimeError("incomplete format") }
            if conversion == "%" { out += "%"; continue }
            guard next < arguments.count else { throw runtimeError("not enough arguments for format string") }
            let argument = arguments[next]
            next += 1
            switch conversion {
            case "s": out += try str(argument)
            case "r": out += try repr(argument)
            case "d", "i":
                guard let number = argument.integerValue else { throw runtimeError("%d format: a number is required") }
                out += String(number)
            case "f":
                guard let number = argument.number else { throw runtimeError("%f format: a number is required") }
                out += String(format: "%.6f", number)
            default: throw runtimeError("unsupported format character '\(quoted(String(conversion), limit: 60))'")
            }
            try meter.checkString(bytes: out.utf8.count)
        }
        guard next == arguments.count else { throw runtimeError("not all arguments converted during string formatting") }
        return out
    }

    /// Globals of Jinja (`range`, `namespace`, `dict`) and of transformers (`raise_exception`, `strftime_now`).
    func builtinFunction(_ name: String) -> Callable? {
        switch name {
        case "range":
            return Callable(name: name) { [unowned self] arguments in
                let bounds = arguments.positional.compactMap { value -> Int? in
                    if case .int(let i) = value { return i }
                    return nil
                }
                guard bounds.count == arguments.positional.count, (1...3).contains(bounds.count) else {
                    throw runtimeError("range() takes 1 to 3 integer arguments")
                }
                let start = bounds.count == 1 ? 0 : bounds[0]
                let stop = bounds.count == 1 ? bounds[0] : bounds[1]
                let step = bounds.count == 3 ? bounds[2] : 1
                guard step != 0 else { throw runtimeError("range() arg 3 must not be zero") }
                // The length, in unsigned arithmetic (stop - start can overflow Int), checked before allocating.
                let span = step > 0 ? (stop > start ? UInt(bitPattern: stop &- start) : 0)
                                    : (start > stop ? UInt(bitPattern: start &- stop) : 0)
                let count = span == 0 ? 0 : (span - 1) / step.magnitude + 1
                guard count <= UInt(self.meter.budget.maxItems) else {
                    throw budgetError(.valueSize, "range() of \(count) items (more than \(self.meter.budget.maxItems))")
                }
                try self.meter.charge(newValues: Int(count))
                return .array(stride(from: start, to: stop, by: step).map { .int($0) })
            }
        case "namespace", "dict":
            return Callable(name: name) { [unowned self] arguments in
                var attributes = RuntimeObject()
                for positional in arguments.positional {
                    switch positional {
                    case .object(let object): for pair in object.pairs { attributes[pair.key] = pair.value }
                    case .namespace(let other): for pair in other.attributes.pairs { attributes[pair.key] = pair.value }
                    default: throw runtimeError("\(name)() takes a mapping and keyword arguments")
                    }
                }
                for keyword in arguments.keyword { attributes[keyword.name] = keyword.value }
                try self.checkNesting(.object(attributes), namespaceFree: name == "namespace")
                if name == "dict" { return .object(attributes) }
                let namespace = Namespace()
                namespace.attributes = attributes
                return .namespace(namespace)
            }
        case "raise_exception":
            return Callable(name: name) { [unowned self] arguments in
                let message = try arguments.value(0, "message").map { try self.str($0) } ?? ""
                throw ChatTemplateError.raised(quoted(message, limit: 500))
            }
        case "strftime_now":
            return Callable(name: name) { [unowned self] arguments in
                guard case .string(let format)? = arguments.value(0, "format") else {
                    throw runtimeError("strftime_now() needs a format string")
                }
                try self.meter.charge(bytes: format.utf8.count)
                return .string(formatCurrentTime(format))
            }
        default:
            return nil
        }
    }
}

/// The size of `'x' * n` / `[...] * n` (bytes or items), worked out before building it.
private func repetitionSize(_ count: Int, _ unit: Int) throws -> Int {
    let (total, overflow) = max(0, count).multipliedReportingOverflow(by: unit)
    guard !overflow else { throw budgetError(.valueSize, "a repetition of \(count) copies") }
    return total
}

extension RuntimeValue {
    /// Python int-like arguments: ints, bools, and finite floats (truncated), else nil.
    var integerValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        case .double(let d): return d.isFinite && abs(d) < 9.2e18 ? Int(d.rounded(.towardZero)) : nil
        default: return nil
        }
    }

    var isString: Bool {
        if case .string = self { return true }
        return false
    }
}

/// `datetime.now().strftime(format)` in the local time zone.
func formatCurrentTime(_ format: String) -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 512)
    let length = strftime(&buffer, buffer.count, format, &parts)
    return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
