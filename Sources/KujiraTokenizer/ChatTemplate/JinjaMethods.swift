import Foundation

/// Python methods callable on template values: `str.split`, `dict.items`, ... (read-only ones, as in
/// transformers' immutable sandbox).
extension JinjaEvaluator {
    func boundMethod(_ receiver: RuntimeValue, _ name: String) throws -> Callable? {
        switch receiver {
        case .string(let text): return stringMethod(text, name)
        case .object(let object): return mappingMethod(object, name)
        case .namespace(let namespace): return mappingMethod(namespace.attributes, name)
        case .array(let items): return listMethod(items, name)
        default: return nil
        }
    }

    private func mappingMethod(_ object: RuntimeObject, _ name: String) -> Callable? {
        switch name {
        case "items":
            return Callable(name: name) { _ in .array(object.pairs.map { .array([.string($0.key), $0.value]) }) }
        case "keys":
            return Callable(name: name) { _ in .array(object.keys.map { .string($0) }) }
        case "values":
            return Callable(name: name) { _ in .array(object.pairs.map(\.value)) }
        case "get":
            return Callable(name: name) { arguments in
                guard case .string(let key)? = arguments.value(0, "key") else { return arguments.value(1, "default") ?? .none }
                return object[key] ?? arguments.value(1, "default") ?? .none
            }
        default:
            return nil
        }
    }

    private func listMethod(_ items: [RuntimeValue], _ name: String) -> Callable? {
        switch name {
        case "index":
            return Callable(name: name) { arguments in
                let needle = arguments.value(0, "value") ?? .none
                guard let index = items.firstIndex(where: { $0.pythonEquals(needle) }) else {
                    throw runtimeError("\(needle.pythonRepr) is not in list")
                }
                return .int(index)
            }
        case "count":
            return Callable(name: name) { arguments in
                let needle = arguments.value(0, "value") ?? .none
                return .int(items.filter { $0.pythonEquals(needle) }.count)
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
            case .array(let items)?: return items.map(\.pythonString)
            default: throw runtimeError("str.\(name)() needs a string or tuple of strings")
            }
        }
        let scalars = text.unicodeScalars
        switch name {
        case "split", "rsplit":
            return Callable(name: name) { arguments in
                let separator = try optionalString(arguments, 0, "sep")
                let maxSplit = arguments.value(1, "maxsplit")?.integerValue ?? -1
                if separator == "" { throw runtimeError("empty separator") }
                let parts = pythonSplit(text, separator: separator, maxSplit: maxSplit, fromRight: name == "rsplit")
                return .array(parts.map { .string($0) })
            }
        case "splitlines":
            return Callable(name: name) { _ in
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
            return Callable(name: name) { arguments in
                let old = try requiredString(arguments, 0, "old")
                let new = try requiredString(arguments, 1, "new")
                let count = arguments.value(2, "count")?.integerValue
                return .string(pythonReplace(text, old, new, count: count.map { $0 < 0 ? -1 : $0 }))
            }
        case "find", "rfind", "count":
            return Callable(name: name) { arguments in
                let needle = Array(try requiredString(arguments, 0, "sub").unicodeScalars)
                let haystack = Array(scalars)
                var positions: [Int] = []
                var index = 0
                while index + needle.count <= haystack.count {
                    if Array(haystack[index..<index + needle.count]) == needle {
                        positions.append(index)
                        index += max(needle.count, 1)
                    } else {
                        index += 1
                    }
                }
                if name == "count" { return .int(positions.count) }
                if name == "find" { return .int(positions.first ?? -1) }
                // rfind: the last occurrence, which non-overlapping scanning from the left can miss.
                var last = -1
                var start = 0
                while start + needle.count <= haystack.count {
                    if Array(haystack[start..<start + needle.count]) == needle { last = start }
                    start += 1
                }
                return .int(last)
            }
        case "join":
            return Callable(name: name) { [unowned self] arguments in
                let items = try self.iterate(arguments.value(0, "iterable") ?? .array([]))
                return .string(try items.map { item in
                    guard case .string(let s) = item else {
                        throw runtimeError("str.join(): expected str instance, \(item.typeName) found")
                    }
                    return s
                }.joined(separator: text))
            }
        case "format":
            return Callable(name: name) { arguments in .string(try pythonFormat(text, arguments)) }
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

/// Python `str.split` / `str.rsplit`; a nil separator splits on whitespace runs and drops empty pieces.
func pythonSplit(_ text: String, separator: String?, maxSplit: Int, fromRight: Bool) -> [String] {
    let scalars = Array(text.unicodeScalars)
    func string(_ slice: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(slice)) }
    var pieces: [String] = []
    var splits = 0
    if let separator {
        let needle = Array(separator.unicodeScalars)
        if fromRight {
            var end = scalars.count
            var index = scalars.count - needle.count
            while index >= 0, maxSplit < 0 || splits < maxSplit {
                if Array(scalars[index..<index + needle.count]) == needle {
                    pieces.append(string(scalars[index + needle.count..<end]))
                    end = index
                    index -= needle.count
                    splits += 1
                } else {
                    index -= 1
                }
            }
            pieces.append(string(scalars[0..<end]))
            return pieces.reversed()
        }
        var start = 0
        var index = 0
        while index + needle.count <= scalars.count, maxSplit < 0 || splits < maxSplit {
            if Array(scalars[index..<index + needle.count]) == needle {
                pieces.append(string(scalars[start..<index]))
                index += needle.count
                start = index
                splits += 1
            } else {
                index += 1
            }
        }
        pieces.append(string(scalars[start...]))
        return pieces
    }
    // Whitespace splitting (left to right; rsplit with a limit is rare enough to share the same path
    // only when unlimited).
    var words: [ArraySlice<Unicode.Scalar>] = []
    var index = 0
    while index < scalars.count {
        while index < scalars.count, isPythonWhitespace(scalars[index]) { index += 1 }
        guard index < scalars.count else { break }
        if maxSplit >= 0, words.count == maxSplit, !fromRight {
            var end = scalars.count
            while end > index, isPythonWhitespace(scalars[end - 1]) { end -= 1 }
            words.append(scalars[index..<end])
            break
        }
        let start = index
        while index < scalars.count, !isPythonWhitespace(scalars[index]) { index += 1 }
        words.append(scalars[start..<index])
    }
    if fromRight, maxSplit >= 0, words.count > maxSplit + 1 {
        let headCount = words.count - maxSplit
        let headEnd = words[headCount - 1].endIndex
        let headStart = words[0].startIndex
        return [string(scalars[headStart..<headEnd])] + words[headCount...].map(string)
    }
    return words.map(string)
}

/// Python `str.format` for `{}`, `{0}`, `{name}` and `{{`/`}}` (no format specs).
func pythonFormat(_ format: String, _ arguments: CallArguments) throws -> String {
    var out = ""
    var automaticIndex = 0
    var iterator = format.unicodeScalars.makeIterator()
    var pending: Unicode.Scalar? = nil
    func next() -> Unicode.Scalar? {
        if let p = pending { pending = nil; return p }
        return iterator.next()
    }
    while let scalar = next() {
        if scalar == "}" {
            guard let following = next(), following == "}" else { throw runtimeError("single '}' in format string") }
            out += "}"
            continue
        }
        guard scalar == "{" else { out.unicodeScalars.append(scalar); continue }
        guard let first = next() else { throw runtimeError("single '{' in format string") }
        if first == "{" { out += "{"; continue }
        var field = String(first == "}" ? "" : String(first))
        if first != "}" {
            while let c = next(), c != "}" { field.unicodeScalars.append(c) }
        }
        if field.contains(":") || field.contains("!") { throw runtimeError("format specs are not supported") }
        let value: RuntimeValue?
        if field.isEmpty {
            value = automaticIndex < arguments.positional.count ? arguments.positional[automaticIndex] : nil
            automaticIndex += 1
        } else if let index = Int(field) {
            value = index < arguments.positional.count ? arguments.positional[index] : nil
        } else {
            value = arguments.keyword.last { $0.name == field }?.value
        }
        guard let value else { throw runtimeError("format: no argument for field '{\(field)}'") }
        out += value.pythonString
    }
    return out
}
