import Foundation

/// One rule of a GRPO reward, as `kujira grpo --reward` spells it.
public enum RewardRule: Sendable, Codable, Equatable {
    /// 1 when the completion's answer (`Rewards.extractAnswer`) equals the example's `answer` field, else 0.
    case exactAnswer
    /// 1 when the last number in the completion (after any `</think>`) equals the `answer` field numerically, else 0.
    case lastNumber
    /// 1 when the completion (after any `</think>`) contains a match of the regular expression, else 0.
    case regex(String)
    /// 1 when the completion (after any `</think>`, trimmed) is valid JSON — and, with a schema, valid against it.
    case json(schema: String?)
    /// −max(0, tokens − target) / target: nothing up to `target` completion tokens, then a linear penalty.
    case lengthPenalty(target: Int)
}

/// A weighted sum of reward rules.
public struct RewardFunction: Sendable, Codable, Equatable {
    public var terms: [Term]

    /// One weighted rule.
    public struct Term: Sendable, Codable, Equatable {
        public var weight: Double
        public var rule: RewardRule
    }

    /// Parses `--reward` values: `exact`, `number`, `regex:PATTERN`, `json`, `json-schema:FILE` (the schema is read now),
    /// `length:N`, each optionally prefixed by a weight `W*` (default 1), e.g. `0.2*regex:^\d+$`.
    public init(specs: [String]) throws {
        terms = try specs.map { spec in
            var weight = 1.0, body = Substring(spec)
            if let star = spec.firstIndex(of: "*"), let w = Double(spec[..<star]), w.isFinite {
                weight = w
                body = spec[spec.index(after: star)...]
            }
            let rule: RewardRule
            if body == "exact" {
                rule = .exactAnswer
            } else if body == "number" {
                rule = .lastNumber
            } else if body.hasPrefix("regex:") {
                let pattern = String(body.dropFirst("regex:".count))
                do { _ = try NSRegularExpression(pattern: pattern) } catch {
                    throw TrainingError.invalidInput("--reward: '\(pattern)' is not a valid regular expression")
                }
                rule = .regex(pattern)
            } else if body == "json" {
                rule = .json(schema: nil)
            } else if body.hasPrefix("json-schema:") {
                let path = String(body.dropFirst("json-schema:".count))
                guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
                      (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
                    throw TrainingError.invalidInput("--reward: \(path) is not a readable JSON schema object")
                }
                rule = .json(schema: text)
            } else if body.hasPrefix("length:"), let target = Int(body.dropFirst("length:".count)), target > 0 {
                rule = .lengthPenalty(target: target)
            } else {
                throw TrainingError.invalidInput("--reward: '\(spec)' is not one of exact, number, regex:PATTERN, json, json-schema:FILE, length:N (optionally W*…)")
            }
            return Term(weight: weight, rule: rule)
        }
        guard !terms.isEmpty else { throw TrainingError.invalidInput("--reward: give at least one reward") }
    }

    /// Whether any term needs the example's `answer`.
    public var needsAnswer: Bool { terms.contains { $0.rule == .exactAnswer || $0.rule == .lastNumber } }

    /// Whether `completion` answers `answer` correctly by the first answer rule (`exact` or `number`); nil without one.
    public func isCorrect(_ completion: String, answer: String?) -> Bool? {
        guard let answer, let rule = terms.first(where: { $0.rule == .exactAnswer || $0.rule == .lastNumber })?.rule else { return nil }
        return Self.check(rule, completion, answer: answer)
    }

    static func check(_ rule: RewardRule, _ completion: String, answer: String) -> Bool {
        if rule == .lastNumber {
            guard let got = Rewards.lastNumber(completion), let want = Double(answer.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
            return got == want
        }
        return Rewards.extractAnswer(completion) == answer.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The reward of `completion` (its text and token count) for an example whose expected answer is `answer`.
    public func score(_ completion: String, tokens: Int, answer: String?) -> Double {
        let visible = Rewards.afterReasoning(completion)
        return terms.reduce(0) { total, term in
            let value: Double
            switch term.rule {
            case .exactAnswer, .lastNumber:
                value = answer.map { Self.check(term.rule, completion, answer: $0) ? 1 : 0 } ?? 0
            case let .regex(pattern):
                let regex = try? NSRegularExpression(pattern: pattern)
                value = regex?.firstMatch(in: visible, range: NSRange(visible.startIndex..., in: visible)) != nil ? 1 : 0
            case let .json(schema):
                let trimmed = visible.trimmingCharacters(in: .whitespacesAndNewlines)
                if let parsed = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed]) {
                    if let schema, let schemaObject = try? JSONSerialization.jsonObject(with: Data(schema.utf8)) {
                        value = JSONSchemaCheck.validates(parsed, schemaObject) ? 1 : 0
                    } else {
                        value = 1
                    }
                } else {
                    value = 0
                }
            case let .lengthPenalty(target):
                value = -Double(max(0, tokens - target)) / Double(target)
            }
            return total + term.weight * value
        }
    }
}

/// Answer extraction shared by the rewards and evaluation.
public enum Rewards {
    /// The text after the last `</think>` (the whole text when there is none).
    public static func afterReasoning(_ text: String) -> String {
        guard let range = text.range(of: "</think>", options: .backwards) else { return text }
        return String(text[range.upperBound...])
    }

    /// The last number (optionally signed, with a decimal part) after any reasoning, or nil.
    public static func lastNumber(_ text: String) -> Double? {
        let visible = afterReasoning(text)
        guard let regex = try? NSRegularExpression(pattern: #"-?\d+(?:\.\d+)?"#) else { return nil }
        let matches = regex.matches(in: visible, range: NSRange(visible.startIndex..., in: visible))
        guard let last = matches.last, let range = Range(last.range, in: visible) else { return nil }
        return Double(visible[range])
    }

    /// The answer a completion gives: the contents of its last `\boxed{…}` (braces balanced), else its last non-empty
    /// line; after any reasoning, trimmed.
    public static func extractAnswer(_ text: String) -> String {
        let visible = afterReasoning(text)
        if let start = visible.range(of: "\\boxed{", options: .backwards) {
            var depth = 1, end = start.upperBound
            while end < visible.endIndex {
                if visible[end] == "{" { depth += 1 } else if visible[end] == "}" { depth -= 1; if depth == 0 { break } }
                end = visible.index(after: end)
            }
            if depth == 0 { return visible[start.upperBound..<end].trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        let lines = visible.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.last ?? ""
    }
}

/// A JSON Schema check covering what structured-output schemas use: `type` (one or a list), `properties`, `required`,
/// `additionalProperties: false`, `items`, `enum`, `const`, `minItems`/`maxItems`, `minimum`/`maximum`,
/// `minLength`/`maxLength`, `anyOf`. Unknown keywords are ignored (as validators do).
public enum JSONSchemaCheck {
    public static func validates(_ value: Any, _ schema: Any, depth: Int = 0) -> Bool {
        guard depth < 64 else { return false }
        if let flag = schema as? Bool { return flag }
        guard let s = schema as? [String: Any] else { return true }
        if let options = s["anyOf"] as? [Any], !options.contains(where: { validates(value, $0, depth: depth + 1) }) { return false }
        if let allowed = s["enum"] as? [Any], !allowed.contains(where: { equal($0, value) }) { return false }
        if let constant = s["const"], !equal(constant, value) { return false }
        if let type = s["type"] {
            let types = (type as? [String]) ?? [(type as? String) ?? ""]
            guard types.contains(where: { matches(value, type: $0) }) else { return false }
        }
        if let object = value as? [String: Any] {
            let properties = s["properties"] as? [String: Any] ?? [:]
            for name in s["required"] as? [String] ?? [] where object[name] == nil { return false }
            for (key, item) in object {
                if let sub = properties[key] {
                    if !validates(item, sub, depth: depth + 1) { return false }
                } else if let extra = s["additionalProperties"], !validates(item, extra, depth: depth + 1) {
                    return false
                }
            }
        }
        if let array = value as? [Any] {
            if let items = s["items"], !array.allSatisfy({ validates($0, items, depth: depth + 1) }) { return false }
            if let low = s["minItems"] as? Int, array.count < low { return false }
            if let high = s["maxItems"] as? Int, array.count > high { return false }
        }
        if let number = value as? NSNumber, !isBool(value) {
            if let low = (s["minimum"] as? NSNumber)?.doubleValue, number.doubleValue < low { return false }
            if let high = (s["maximum"] as? NSNumber)?.doubleValue, number.doubleValue > high { return false }
        }
        if let string = value as? String {
            if let low = s["minLength"] as? Int, string.count < low { return false }
            if let high = s["maxLength"] as? Int, string.count > high { return false }
        }
        return true
    }

    static func isBool(_ value: Any) -> Bool {
        if value is Bool, !(value is NSNumber) { return true }
        guard let n = value as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"  // how JSONSerialization's booleans identify themselves (ModelConfig does the same)
    }

    static func matches(_ value: Any, type: String) -> Bool {
        switch type {
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        case "string": return value is String
        case "boolean": return isBool(value)
        case "null": return value is NSNull
        case "number": return value is NSNumber && !isBool(value)
        case "integer":
            guard let n = value as? NSNumber, !isBool(value) else { return false }
            return n.doubleValue == n.doubleValue.rounded() && n.doubleValue.isFinite
        default: return false
        }
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        (a as? NSObject)?.isEqual(b) ?? false
    }
}
