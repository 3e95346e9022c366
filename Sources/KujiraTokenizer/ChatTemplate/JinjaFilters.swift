import Foundation
import KujiraFormats

/// Jinja's builtin filters and tests (the subset chat templates use), plus transformers' `tojson`.
extension JinjaEvaluator {
    /// Applies a filter one evaluator level deeper (`map` applies filters to items), charging the text it reads
    /// and checking the value it builds.
    func applyFilter(_ name: String, to value: RuntimeValue, _ arguments: CallArguments) throws -> RuntimeValue {
        try meter.enter()
        defer { meter.leave() }
        if case .string(let text) = value { try meter.charge(bytes: text.utf8.count) }
        try chargeStringArguments(arguments)
        return try produced(try filterResult(name, value, arguments))
    }

    /// Charges the text of string arguments (separators, search strings, strip sets), which filters and methods read.
    func chargeStringArguments(_ arguments: CallArguments) throws {
        for case .string(let text) in arguments.positional + arguments.keyword.map(\.value) {
            try meter.charge(bytes: text.utf8.count)
        }
    }

    private func filterResult(_ name: String, _ value: RuntimeValue, _ arguments: CallArguments) throws -> RuntimeValue {
        func argument(_ index: Int, _ key: String) -> RuntimeValue? { arguments.value(index, key) }
        func flag(_ index: Int, _ key: String) -> Bool { argument(index, key)?.isTruthy ?? false }
        func stringArgument(_ index: Int, _ key: String) throws -> String? {
            guard let value = argument(index, key) else { return nil }
            guard case .string(let s) = value else {
                throw runtimeError("filter '\(name)': argument '\(key)' must be a string")
            }
            return s
        }

        switch name {
        case "default", "d":
            let fallback = argument(0, "default_value") ?? .string("")
            if value.isUndefined || (flag(1, "boolean") && !value.isTruthy) { return fallback }
            return value
        case "safe":
            return value
        case "list":
            return value.isArrayValue ? value : .array(try iterate(value))
        case "string":
            return .string(try str(value))
        case "length", "count":
            return .int(try length(of: value))
        case "tojson":
            return .string(try toJSON(value, arguments))
        case "trim":
            let text = try stringOperand(value, name)
            if let chars = try stringArgument(0, "chars") { return .string(stripScalars(text, in: chars)) }
            return .string(stripScalars(text, in: nil))
        case "lower": return .string(try stringOperand(value, name).lowercased())
        case "upper": return .string(try stringOperand(value, name).uppercased())
        case "capitalize": return .string(pythonCapitalize(try stringOperand(value, name)))
        case "title": return .string(pythonTitle(try stringOperand(value, name)))
        case "replace":
            guard let old = try stringArgument(0, "old"), let new = try stringArgument(1, "new") else {
                throw runtimeError("replace needs 'old' and 'new' strings")
            }
            let count = argument(2, "count")?.integerValue
            return .string(try pythonReplace(try stringOperand(value, name), old, new, count: count,
                                             maxBytes: meter.budget.maxStringBytes))
        case "join":
            var items = try iterate(value)
            if let attribute = argument(1, "attribute") { items = try items.map { try lookupPath($0, attribute) } }
            return .string(try join(items, separator: try stringArgument(0, "d") ?? ""))
        case "first", "last":
            // A string's end is read directly rather than by iterating all of its characters.
            let end: RuntimeValue?
            if case .string(let s) = value {
                end = (name == "first" ? s.unicodeScalars.first : s.unicodeScalars.last).map { .string(String($0)) }
            } else {
                let items = try iterate(value)
                end = name == "first" ? items.first : items.last
            }
            return end ?? .undefined("\(name) item of an empty sequence")
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try iterate(value).reversed())
        case "items":
            if value.isUndefined { return .array([]) }
            let pairs = RuntimeValue.array(try mappingPairs(value, name).map { .array([.string($0.key), $0.value]) })
            try checkNesting(pairs)
            return pairs
        case "dictsort":
            let byValue = (try stringArgument(1, "by")) == "value"
            let caseSensitive = flag(0, "case_sensitive")
            let pairs = try mappingPairs(value, name).sorted { a, b in
                let left = byValue ? a.value : .string(a.key), right = byValue ? b.value : .string(b.key)
                return try less(sortKey(left, caseSensitive), sortKey(right, caseSensitive))
            }
            let ordered = flag(2, "reverse") ? pairs.reversed() : pairs
            let sortedPairs = RuntimeValue.array(ordered.map { .array([.string($0.key), $0.value]) })
            try checkNesting(sortedPairs)
            return sortedPairs
        case "sort":
            let caseSensitive = flag(1, "case_sensitive")
            let attribute = argument(2, "attribute")
            let sorted = try iterate(value).sorted { a, b in
                let left = try attribute.map { try lookupPath(a, $0) } ?? a
                let right = try attribute.map { try lookupPath(b, $0) } ?? b
                return try less(sortKey(left, caseSensitive), sortKey(right, caseSensitive))
            }
            return .array(flag(0, "reverse") ? sorted.reversed() : sorted)
        case "unique":
            let caseSensitive = flag(0, "case_sensitive")
            let attribute = argument(1, "attribute")
            var seen: [RuntimeValue] = []
            var out: [RuntimeValue] = []
            for item in try iterate(value) {
                let key = sortKey(try attribute.map { try lookupPath(item, $0) } ?? item, caseSensitive)
                if try !seen.contains(where: { try equals($0, key) }) { seen.append(key); out.append(item) }
            }
            return .array(out)
        case "min", "max":
            let caseSensitive = flag(0, "case_sensitive")
            let attribute = argument(1, "attribute")
            var best: (item: RuntimeValue, key: RuntimeValue)?
            for item in try iterate(value) {
                let key = sortKey(try attribute.map { try lookupPath(item, $0) } ?? item, caseSensitive)
                if let current = best {
                    let better = name == "min" ? try less(key, current.key) : try less(current.key, key)
                    if better { best = (item, key) }
                } else {
                    best = (item, key)
                }
            }
            return best?.item ?? .undefined("\(name) of an empty sequence")
        case "sum":
            var total: RuntimeValue = argument(1, "start") ?? .int(0)
            for item in try iterate(value) {
                total = try binaryOperation("+", total, try argument(0, "attribute").map { try lookupPath(item, $0) } ?? item)
            }
            return total
        case "map":
            return .array(try iterate(value).map { item in
                if let attribute = arguments.keyword.last(where: { $0.name == "attribute" })?.value {
                    let found = try lookupPath(item, attribute)
                    if found.isUndefined, let fallback = arguments.keyword.last(where: { $0.name == "default" }) {
                        return fallback.value
                    }
                    return found
                }
                guard case .string(let filterName)? = arguments.positional.first else {
                    throw runtimeError("map needs a filter name or attribute=")
                }
                return try applyFilter(filterName, to: item,
                                       CallArguments(positional: Array(arguments.positional.dropFirst()),
                                                     keyword: arguments.keyword))
            })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var rest = arguments.positional
            var attribute: RuntimeValue?
            if byAttribute {
                guard !rest.isEmpty else { throw runtimeError("\(name) needs an attribute name") }
                attribute = rest.removeFirst()
            }
            var testName: String?
            if !rest.isEmpty {
                guard case .string(let test) = rest.removeFirst() else { throw runtimeError("\(name): test name must be a string") }
                testName = test
            }
            return .array(try iterate(value).filter { item in
                let subject = try attribute.map { try lookupPath(item, $0) } ?? item
                let passed = try testName.map {
                    try applyTest($0, to: subject, CallArguments(positional: rest, keyword: arguments.keyword))
                } ?? subject.isTruthy
                return passed == keep
            })
        case "attr":
            guard case .string(let attributeName)? = argument(0, "name") else { throw runtimeError("attr needs a name") }
            return try attribute(of: value, attributeName)
        case "int":
            return convertToInt(value) ?? argument(0, "default") ?? .int(0)
        case "float":
            return convertToDouble(value) ?? argument(0, "default") ?? .double(0)
        case "abs":
            switch value {
            case .int(let i):
                guard i != .min else { throw runtimeError("integer overflow in abs()") }
                return .int(abs(i))
            case .double(let d): return .double(abs(d))
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw runtimeError("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            guard let number = value.number else { throw runtimeError("round needs a number") }
            let precision = max(-308, min(308, argument(0, "precision")?.integerValue ?? 0))
            let method = try stringArgument(1, "method") ?? "common"
            let scale = pow(10.0, Double(precision))
            let rule: FloatingPointRoundingRule = method == "ceil" ? .up : method == "floor" ? .down : .toNearestOrEven  // Python round()
            // Python returns the number itself when the precision is finer than a double (10**400 overflows here).
            guard (number * scale).isFinite else { return .double(number) }
            return .double((number * scale).rounded(rule) / scale)
        case "e", "escape":
            return .string(htmlEscape(try str(value)))
        case "indent":
            let width = argument(0, "width") ?? .int(4)
            let indentation: String
            if case .string(let s) = width { indentation = s } else {
                guard let count = width.integerValue, (0...10_000).contains(count) else {
                    throw runtimeError("indent width must be an integer between 0 and 10000 or a string")
                }
                indentation = String(repeating: " ", count: count)
            }
            let text = try stringOperand(value, name)
            // One indentation per line at most, worked out before building the result.
            let lines = text.utf8.lazy.filter { $0 == 0x0A }.count + 1
            let (added, overflow) = lines.multipliedReportingOverflow(by: indentation.utf8.count)
            guard !overflow else { throw budgetError(.valueSize, "indent of \(lines) lines by \(indentation.utf8.count) bytes") }
            try meter.checkString(bytes: text.utf8.count + added)
            return .string(pythonIndent(text, indentation, first: flag(1, "first"), blank: flag(2, "blank")))
        case "batch":
            guard let size = argument(0, "linecount")?.integerValue, size >= 1 else {
                throw runtimeError("batch needs a positive size")
            }
            try meter.checkItems(size)
            var batches: [RuntimeValue] = []
            var current: [RuntimeValue] = []
            for item in try iterate(value) {
                current.append(item)
                if current.count == size { batches.append(.array(current)); current = [] }
            }
            if !current.isEmpty {
                if let fill = argument(1, "fill_with") {
                    try meter.charge(items: size - current.count)
                    current += Array(repeating: fill, count: size - current.count)
                }
                batches.append(.array(current))
            }
            try checkNesting(.array(batches))
            return .array(batches)
        case "wordcount":
            var words = 0, inWord = false
            for character in try stringOperand(value, name) {
                if !character.isWhitespace, !inWord { words += 1 }
                inWord = !character.isWhitespace
            }
            return .int(words)
        case "format":
            return try binaryOperation("%", .string(try stringOperand(value, name)), .array(arguments.positional))
        default:
            throw runtimeError("unsupported filter '\(quoted(name, limit: 60))'")
        }
    }

    func applyTest(_ name: String, to value: RuntimeValue, _ arguments: CallArguments) throws -> Bool {
        func other() throws -> RuntimeValue {
            guard let argument = arguments.value(0, "other") else { throw runtimeError("test '\(name)' needs an argument") }
            return argument
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.number != nil
        case "string": return value.isString
        case "mapping": if case .object = value { return true } else { return false }
        case "iterable", "sequence":
            switch value {
            case .array, .object, .string, .undefined, .namespace: return true
            default: return false
            }
        case "callable": if case .callable = value { return true } else { return false }
        case "odd", "even":
            guard case .int(let i) = value else { throw runtimeError("test '\(name)' needs an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let i) = value, case .int(let n) = try other(), n != 0 else {
                throw runtimeError("divisibleby needs non-zero integers")
            }
            return i.remainderReportingOverflow(dividingBy: n).partialValue == 0  // Int.min % -1 traps
        case "eq", "equalto", "==": return try equals(value, try other())
        case "ne", "!=": return try !equals(value, try other())
        case "lt", "lessthan", "<": return try less(value, try other())
        case "gt", "greaterthan", ">": return try less(try other(), value)
        case "le", "<=": return try !less(try other(), value)
        case "ge", ">=": return try !less(value, try other())
        case "in": return try contains(try other(), value)
        case "sameas":
            let argument = try other()
            switch (value, argument) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "lower", "upper":
            guard case .string(let s) = value else { return false }
            try meter.charge(bytes: s.utf8.count)
            return s == (name == "lower" ? s.lowercased() : s.uppercased())
        case "escaped": return false
        default: throw runtimeError("unsupported test '\(quoted(name, limit: 60))'")
        }
    }

    /// Python `len()`.
    func length(of value: RuntimeValue) throws -> Int {
        switch value {
        case .string(let s): return s.unicodeScalars.count
        case .array(let items): return items.count
        case .object(let object): return object.count
        case .namespace(let namespace): return namespace.attributes.count
        case .undefined: return 0
        default: throw runtimeError("object of type '\(value.typeName)' has no len()")
        }
    }

    /// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=indent, separators=..., sort_keys=...)`.
    private func toJSON(_ value: RuntimeValue, _ arguments: CallArguments) throws -> String {
        var indent: String?
        switch arguments.value(0, "indent") {
        case .int(let n)?:
            guard n <= 10_000 else { throw runtimeError("tojson: indent \(n) is too large") }
            indent = String(repeating: " ", count: max(0, n))
        case .string(let s)?: indent = s
        case nil, .none?: indent = nil
        case let other?: throw runtimeError("tojson: indent must be an integer or string, not \(other.typeName)")
        }
        var writer = JSONWriter(indent: indent)
        writer.meter = meter
        if case .array(let separators)? = arguments.value(2, "separators"), separators.count == 2 {
            writer.itemSeparator = try str(separators[0])
            writer.keySeparator = try str(separators[1])
        }
        writer.sortKeys = arguments.value(3, "sort_keys")?.isTruthy ?? false
        writer.ensureASCII = arguments.keyword.last(where: { $0.name == "ensure_ascii" })?.value.isTruthy ?? false
        var out = ""
        try writer.write(value, into: &out)
        return out
    }

    /// Follows `attribute="a.b.0"` paths as Jinja's `make_attrgetter` does.
    private func lookupPath(_ item: RuntimeValue, _ path: RuntimeValue) throws -> RuntimeValue {
        if case .int = path { return try self.item(of: item, path) }
        var current = item
        let text = try str(path)
        try meter.charge(bytes: text.utf8.count)
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            if let index = Int(part) {
                current = try self.item(of: current, .int(index))
            } else {
                current = try self.item(of: current, .string(String(part)))
            }
            if current.isUndefined { return current }
        }
        return current
    }

    private func sortKey(_ value: RuntimeValue, _ caseSensitive: Bool) -> RuntimeValue {
        if !caseSensitive, case .string(let s) = value { return .string(s.lowercased()) }
        return value
    }

    private func mappingPairs(_ value: RuntimeValue, _ filter: String) throws -> [(key: String, value: RuntimeValue)] {
        switch value {
        case .object(let object): return object.pairs
        case .namespace(let namespace): return namespace.attributes.pairs
        default: throw runtimeError("filter '\(filter)' needs a mapping, not \(value.typeName)")
        }
    }

    /// String filters apply Python `str()` first (Jinja's `soft_str`), so undefined becomes "".
    private func stringOperand(_ value: RuntimeValue, _ filter: String) throws -> String {
        try str(value)
    }

    /// `separator.join(str(item) for item in items)`, stopping as soon as the value budget is passed.
    func join(_ items: [RuntimeValue], separator: String) throws -> String {
        var out = ""
        for (index, item) in items.enumerated() {
            if index > 0 { out += separator }
            out += try str(item)
            try meter.checkString(bytes: out.utf8.count)
        }
        return out
    }

    private func convertToInt(_ value: RuntimeValue) -> RuntimeValue? {
        switch value {
        case .int: return value
        case .bool(let b): return .int(b ? 1 : 0)
        case .double(let d): return d.isFinite && abs(d) < 9.2e18 ? .int(Int(d.rounded(.towardZero))) : nil
        case .string(let s):
            let trimmed = s.trimmingCharacters(in: .whitespaces)
            if let i = Int(trimmed.replacingOccurrences(of: "_", with: "")) { return .int(i) }
            if let d = Double(trimmed), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d.rounded(.towardZero))) }
            return nil
        default: return nil
        }
    }

    private func convertToDouble(_ value: RuntimeValue) -> RuntimeValue? {
        switch value {
        case .double: return value
        case .int(let i): return .double(Double(i))
        case .bool(let b): return .double(b ? 1 : 0)
        case .string(let s): return Double(s.trimmingCharacters(in: .whitespaces)).map { .double($0) }
        default: return nil
        }
    }
}

extension RuntimeValue {
    var isArrayValue: Bool {
        if case .array = self { return true }
        return false
    }
}

/// Python `str.strip(chars)`; nil strips whitespace.
func stripScalars(_ text: String, in chars: String?, leading: Bool = true, trailing: Bool = true) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    func strip(_ scalar: Unicode.Scalar) -> Bool { set?.contains(scalar) ?? isPythonWhitespace(scalar) }
    var scalars = Substring(text).unicodeScalars[...]
    if leading { while let first = scalars.first, strip(first) { scalars.removeFirst() } }
    if trailing { while let last = scalars.last, strip(last) { scalars.removeLast() } }
    return String(String.UnicodeScalarView(scalars))
}

/// Python `str.capitalize()`: first character upper-cased, the rest lower-cased.
func pythonCapitalize(_ text: String) -> String {
    guard let first = text.unicodeScalars.first else { return text }
    return String(first).uppercased() + String(String.UnicodeScalarView(text.unicodeScalars.dropFirst())).lowercased()
}

/// Python `str.title()`: upper-case letters that follow a non-letter, lower-case the others.
func pythonTitle(_ text: String) -> String {
    var out = ""
    var previousIsLetter = false
    for scalar in text.unicodeScalars {
        let isLetter = scalar.properties.isAlphabetic
        out += isLetter ? (previousIsLetter ? String(scalar).lowercased() : String(scalar).uppercased()) : String(scalar)
        previousIsLetter = isLetter
    }
    return out
}

/// Markupsafe's `escape`.
func htmlEscape(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Jinja's `indent` filter.
func pythonIndent(_ text: String, _ indentation: String, first: Bool, blank: Bool) -> String {
    let lines = (text + "\n").split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    var result: String
    if blank {
        result = lines.joined(separator: "\n" + indentation)
    } else {
        result = lines.first ?? ""
        let rest = lines.dropFirst()
        if !rest.isEmpty {
            result += "\n" + rest.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
        }
    }
    return first ? indentation + result : result
}
