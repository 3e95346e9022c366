import Foundation
import KujiraFormats

/// Python methods callable on template values: `str.split`, `dict.items`, ... (read-only ones, as in
/// transformers' immutable sandbox).
extension JinjaEvaluator {
    /// The method `name` of `receiver`, or nil. The callable records its receiver (see `Callable.receiver`);
    /// string methods charge the text they read when called.
    func boundMethod(_ receiver: RuntimeValue, _ name: String) throws -> Callable? {
        switch receiver {
        case .string(let text):
            guard let method = stringMethod(text, name) else { return nil }
            return Callable(name: name) { [unowned self] arguments in
                try self.meter.charge(bytes: text.utf8.count)
                try self.chargeStringArguments(arguments)
                return try method.body(arguments)
            }
        case .object(let object): return mappingMethod(object, name)
        case .namespace(let namespace): return mappingMethod(namespace.attributes, name)
        case .array(let items): return listMethod(items, name)
        default: return nil
        }
    }

    private func mappingMethod(_ object: RuntimeObject, _ name: String) -> Callable? {
        let receiver = RuntimeValue.object(object)
        switch name {
        case "items":
            return Callable(name: name, receiver: receiver) { [unowned self] _ in
                let pairs = RuntimeValue.array(object.pairs.map { .array([.string($0.key), $0.value]) })
                try self.checkNesting(pairs)
                return pairs
            }
        case "keys":
            return Callable(name: name, receiver: receiver) { _ in .array(object.keys.map { .string($0) }) }
        case "values":
            return Callable(name: name, receiver: receiver) { _ in .array(object.pairs.map(\.value)) }
        case "get":
            return Callable(name: name, receiver: receiver) { [unowned self] arguments in
                guard case .string(let key)? = arguments.value(0, "key") else { return arguments.value(1, "default") ?? .none }
                try self.meter.charge(bytes: key.utf8.count)
                return object[key] ?? arguments.value(1, "default") ?? .none
            }
        default:
            return nil
        }
    }

    private func listMethod(_ items: [RuntimeValue], _ name: String) -> Callable? {
        let receiver = RuntimeValue.array(items)
        switch name {
        case "index":
            return Callable(name: name, receiver: receiver) { [unowned self] arguments in
                let needle = arguments.value(0, "value") ?? .none
                guard let index = try items.firstIndex(where: { try self.equals($0, needle) }) else {
                    throw runtimeError("\(self.describe(needle)) is not in list")
                }
                return .int(index)
            }
        case "count":
            return Callable(name: name, receiver: receiver) { [unowned self] arguments in
                let needle = arguments.value(0, "value") ?? .none
                return .int(try items.filter { try self.equals($0, needle) }.count)
            }
        default:
            return nil
        }
    }

    private func stringMethod(_ text: String, _ name: String) -> Callable? {
        func optionalString(_ arguments: CallArguments, _ index: Int, _ key: String) throws -> String? {
            switch arguments.value(index, key) {
            case nil, .none?: return nil
            case .string(let s)?: return s
            case let other?: throw runtimeError("str.\(name)(): argument must be str or None, not \(other.typeName)")
            }
        }
        func requiredString(_ arguments: CallArguments, _ index: Int, _ key: String) throws -> String {
            guard let value = try optionalString(arguments, index, key) else {
                throw runtimeError("str.\(name)() needs a string argument '\(key)'")
            }
            return value
        }
        func affixes(_ arguments: CallArguments) throws -> [String] {
            switch arguments.value(0, "prefix") {
            case .string(let s)?: return [s]
            case .array(let items)?:
                return try items.map { item in
                    let affix = try self.str(item)
                    try self.meter.charge(bytes: affix.utf8.count)
                    return affix
                }
            default: throw runtimeError("str.\(name)() needs a string or tuple of strings")
            }
        }
        let scalars = text.unicodeScalars
        switch name {
        case "split", "rsplit":
            return Callable(name: name) { [unowned self] arguments in
                let separator = try optionalString(arguments, 0, "sep")
                let maxSplit = arguments.value(1, "maxsplit")?.integerValue ?? -1
                if separator == "" { throw runtimeError("empty separator") }
                let parts = try pythonSplit(text, separator: separator, maxSplit: maxSplit, fromRight: name == "rsplit",
                                            maxPieces: self.meter.budget.maxItems)
                try self.meter.charge(newValues: parts.count)
                return .array(parts.map { .string($0) })
            }
        case "splitlines":
            return Callable(name: name) { [unowned self] _ in
                try self.meter.checkItems(text.utf8.lazy.filter { $0 == 0x0A }.count)
                var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                if lines.last == "" { lines.removeLast() }
                return .array(lines.map { .string($0.hasSuffix("\r") ? String($0.dropLast()) : $0) })
            }
        case "startswith", "endswith":
            return Callable(name: name) { arguments in
                let candidates = try affixes(arguments)
                return .bool(candidates.contains { affix in
                    name == "startswith" ? scalars.starts(with: affix.unicodeScalars)
                        : scalars.reversed().starts(with: affix.unicodeScalars.reversed())
                })
            }
        case "strip", "lstrip", "rstrip":
            return Callable(name: name) { arguments in
                let chars = try optionalString(arguments, 0, "chars")
                return .string(stripScalars(text, in: chars, leading: name != "rstrip", trailing: name != "lstrip"))
            }
        case "upper": return Callable(name: name) { _ in .string(text.uppercased()) }
        case "lower": return Callable(name: name) { _ in .string(text.lowercased()) }
        case "title": return Callable(name: name) { _ in .string(pythonTitle(text)) }
        case "capitalize": return Callable(name: name) { _ in .string(pythonCapitalize(text)) }
        case "replace":
            return Callable(name: name) { [unowned self] arguments in
                let old = try requiredString(arguments, 0, "old")
                let new = try requiredString(arguments, 1, "new")
                let count = arguments.value(2, "count")?.integerValue
                return .string(try pythonReplace(text, old, new, count: count, maxBytes: self.meter.budget.maxStringBytes))
            }
        case "find", "rfind", "count":
            return Callable(name: name) { arguments in
                let search = ScalarSearch(try requiredString(arguments, 0, "sub"))
                let haystack = Array(scalars)
                switch name {
                case "count": return .int(search.count(in: haystack))
                case "find": return .int(search.first(in: haystack) ?? -1)
                // rfind: the last occurrence, which non-overlapping matching from the left can miss.
                default: return .int(search.last(in: haystack) ?? -1)
                }
            }
        case "join":
            return Callable(name: name) { [unowned self] arguments in
                let items = try self.iterate(arguments.value(0, "iterable") ?? .array([]))
                for item in items where !item.isString {
                    throw runtimeError("str.join(): expected str instance, \(item.typeName) found")
                }
                return .string(try self.join(items, separator: text))
            }
        case "format":
            return Callable(name: name) { [unowned self] arguments in .string(try self.pythonFormat(text, arguments)) }
        case "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower":
            return Callable(name: name) { _ in
                guard !scalars.isEmpty else { return .bool(false) }
                switch name {
                case "isdigit": return .bool(scalars.allSatisfy { $0.properties.numericType != nil })
                case "isalpha": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic })
                case "isalnum":
                    return .bool(scalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
                case "isspace": return .bool(scalars.allSatisfy(isPythonWhitespace))
                case "isupper": return .bool(text == text.uppercased() && text != text.lowercased())
                default: return .bool(text == text.lowercased() && text != text.uppercased())
                }
            }
        default:
            return nil
        }
    }
}

extension JinjaEvaluator {
    /// Python `str.format` for `{}`, `{0}`, `{name}` and `{{`/`}}` (no format specs), within the value budget.
    func pythonFormat(_ format: String, _ arguments: CallArguments) throws -> String {
        var out = ""
        var automaticIndex = 0
        var iterator = format.unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            if scalar == "}" {
                guard let following = iterator.next(), following == "}" else { throw runtimeError("single '}' in format string") }
                out += "}"
                continue
            }
            guard scalar == "{" else { out.unicodeScalars.append(scalar); continue }
            guard let first = iterator.next() else { throw runtimeError("single '{' in format string") }
            if first == "{" { out += "{"; continue }
            var field = first == "}" ? "" : String(first)
            if first != "}" {
                while let c = iterator.next(), c != "}" { field.unicodeScalars.append(c) }
            }
            if field.contains(":") || field.contains("!") { throw runtimeError("format specs are not supported") }
            let value: RuntimeValue?
            if field.isEmpty {
                value = automaticIndex < arguments.positional.count ? arguments.positional[automaticIndex] : nil
                automaticIndex += 1
            } else if let index = Int(field) {
                value = arguments.positional.indices.contains(index) ? arguments.positional[index] : nil
            } else {
                try meter.charge(items: arguments.keyword.count)
                value = arguments.keyword.last { $0.name == field }?.value
            }
            guard let value else { throw runtimeError("format: no argument for field '{\(quoted(field, limit: 60))}'") }
            out += try str(value)
            try meter.checkString(bytes: out.utf8.count)
        }
        return out
    }
}
