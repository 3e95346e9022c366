import KujiraFormats
/// Budget-checked value operations: every string, list and comparison a template builds goes through these, so
/// their size, nesting and cost are charged to the render's `BudgetMeter`.
extension JinjaEvaluator {
    // MARK: - Sizes

    /// Charges a value the template just built and refuses it past the value-size budget.
    @discardableResult
    func produced(_ value: RuntimeValue) throws -> RuntimeValue {
        switch value {
        case .string(let s):
            let bytes = s.utf8.count
            try meter.checkString(bytes: bytes)
            try meter.charge(bytes: bytes)
        case .array(let items):
            try meter.checkItems(items.count)
            try meter.charge(items: items.count)
        case .object(let object):
            try meter.checkItems(object.count)
            try meter.charge(items: object.count)
        default:
            break
        }
        return value
    }

    /// Appends rendered text to `out` (the output, or a capture), within the output or value budget.
    func emit(_ text: String, into out: inout String) throws {
        let bytes = text.utf8.count
        try meter.charge(bytes: bytes)
        try meter.checkText(bytes: out.utf8.count + bytes)
        out += text
    }

    /// Runs `body` with its text captured into a value rather than output (so the value budget applies).
    func capturing<T>(_ body: () throws -> T) rethrows -> T {
        meter.captures += 1
        defer { meter.captures -= 1 }
        return try body()
    }

    // MARK: - Nesting

    /// Refuses a value the template built that nests deeper than the depth budget; with `namespaceFree`, also one
    /// holding a namespace (namespaces never hold namespaces here, so a chain of them cannot grow without bound).
    /// `level` is how deep the value itself sits. Charges the items it scans.
    func checkNesting(_ value: RuntimeValue, level: Int = 0, namespaceFree: Bool = false) throws {
        _ = try nestingHeight(value, level: level, namespaceFree: namespaceFree)
    }

    private func nestingHeight(_ value: RuntimeValue, level: Int, namespaceFree: Bool) throws -> Int {
        func height(of children: [RuntimeValue]) throws -> Int {
            try meter.checkValueDepth(level + 1)
            try meter.charge(units: children.count)
            var deepest = 0
            for child in children where child.isContainer {
                deepest = max(deepest, try nestingHeight(child, level: level + 1, namespaceFree: namespaceFree))
            }
            return deepest + 1
        }
        switch value {
        case .array(let items): return try height(of: items)
        case .object(let object): return try height(of: object.pairs.map(\.value))
        case .namespace(let namespace):
            if namespaceFree { throw runtimeError("a namespace cannot hold another namespace in this engine") }
            return try height(of: namespace.attributes.pairs.map(\.value))
        case .callable(let callable):
            guard let receiver = callable.receiver else { return 0 }
            return try height(of: [receiver])
        default:
            return 0
        }
    }

    // MARK: - Text conversion

    /// Python `str(value)`, which is what `{{ value }}` prints; undefined prints as nothing. Lists and dicts are
    /// written within the depth and value-size budgets.
    func str(_ value: RuntimeValue) throws -> String {
        switch value {
        case .undefined: return ""
        case .string(let s): return s
        default: return try repr(value)
        }
    }

    /// Python `repr(value)` (strings single-quoted, `True`, `None`, `[1, 2]`, `{'a': 1}`), within the budgets.
    func repr(_ value: RuntimeValue) throws -> String {
        var out = ""
        try writeRepr(value, into: &out, level: 0, maxBytes: meter.budget.maxStringBytes)
        try meter.charge(bytes: out.utf8.count)
        return out
    }

    /// A short repr for error messages (never throws; cut at about 60 characters).
    func describe(_ value: RuntimeValue) -> String {
        var out = ""
        try? writeRepr(value, into: &out, level: 0, maxBytes: 240)
        return quoted(out, limit: 60)
    }

    private func writeRepr(_ value: RuntimeValue, into out: inout String, level: Int, maxBytes: Int) throws {
        func check() throws {
            guard out.utf8.count <= maxBytes else {
                throw budgetError(.valueSize, "the text of a value is more than \(maxBytes) bytes")
            }
        }
        func children<S: Sequence>(_ open: String, _ items: S, _ close: String,
                                   _ write: (S.Element, inout String) throws -> Void) throws {
            try meter.checkValueDepth(level + 1)
            out += open
            var first = true
            for item in items {
                if !first { out += ", " }
                first = false
                try write(item, &out)
                try check()
            }
            out += close
        }
        switch value {
        case .undefined: break
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .double(let d): out += pythonFloatRepr(d)
        case .string(let s): out += pythonStringRepr(s)
        case .array(let items):
            try children("[", items, "]") { try writeRepr($0, into: &$1, level: level + 1, maxBytes: maxBytes) }
        case .object(let object):
            try children("{", object.pairs, "}") { pair, out in
                out += pythonStringRepr(pair.key) + ": "
                try writeRepr(pair.value, into: &out, level: level + 1, maxBytes: maxBytes)
            }
        case .namespace(let namespace):
            try meter.checkValueDepth(level + 1)
            out += "<Namespace "
            for (index, pair) in namespace.attributes.pairs.enumerated() {
                out += (index > 0 ? ", " : "") + pair.key + "="
                try writeRepr(pair.value, into: &out, level: level + 1, maxBytes: maxBytes)
                try check()
            }
            out += ">"
        case .callable(let callable): out += "<function \(quoted(callable.name, limit: 60))>"
        }
        try check()
    }

    // MARK: - Comparison

    /// Python `==`, charged per comparison and per byte compared.
    func equals(_ left: RuntimeValue, _ right: RuntimeValue, level: Int = 0) throws -> Bool {
        try meter.charge(units: 1)
        switch (left, right) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)):
            // Equal scalars are equal UTF-8 bytes (Swift's `==` would also equate canonically equivalent text).
            guard a.utf8.count == b.utf8.count else { return false }
            try meter.charge(bytes: a.utf8.count)
            return a.utf8.elementsEqual(b.utf8)
        case (.int(let a), .int(let b)): return a == b
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            try meter.checkValueDepth(level + 1)
            for (x, y) in zip(a, b) where !(try equals(x, y, level: level + 1)) { return false }
            return true
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            try meter.checkValueDepth(level + 1)
            for pair in a.pairs {
                guard let other = b[pair.key], try equals(pair.value, other, level: level + 1) else { return false }
            }
            return true
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let a = left.number, let b = right.number { return a == b }
            return false
        }
    }

    /// Python `<` for numbers, strings and lists; other pairs are a type error.
    func less(_ left: RuntimeValue, _ right: RuntimeValue, level: Int = 0) throws -> Bool {
        try meter.charge(units: 1)
        switch (left, right) {
        case (.int(let a), .int(let b)): return a < b
        case (.string(let a), .string(let b)):
            // UTF-8 byte order is code point order, which is Python's string order.
            try meter.charge(bytes: min(a.utf8.count, b.utf8.count))
            return a.utf8.lexicographicallyPrecedes(b.utf8)
        case (.array(let a), .array(let b)):
            try meter.checkValueDepth(level + 1)
            for (x, y) in zip(a, b) where !(try equals(x, y, level: level + 1)) {
                return try less(x, y, level: level + 1)
            }
            return a.count < b.count
        default:
            if let a = left.number, let b = right.number { return a < b }
            throw runtimeError("'<' not supported between instances of '\(left.typeName)' and '\(right.typeName)'")
        }
    }
}
