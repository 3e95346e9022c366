import Foundation
import Hummingbird
import KujiraGeneration
import KujiraFormats
import KujiraTokenizer

/// The top-level object of a JSON request with typed accessors whose errors name the parameter (422).
struct RequestFields {
    let object: JinjaObject

    /// Parses the body; anything but a JSON object is a 400.
    static func parse(_ buffer: ByteBuffer) throws -> RequestFields {
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("the request body is empty; send a JSON object") }
        let value: JinjaValue
        do {
            value = try JinjaValue(json: Data(buffer.readableBytesView))
        } catch {
            throw APIError.badRequest("the request body is not valid JSON (\(error))", code: "invalid_json")
        }
        guard case .object(let object) = value else {
            throw APIError.badRequest("the request body must be a JSON object", code: "invalid_json")
        }
        return RequestFields(object: object)
    }

    /// The value at `key`, treating JSON null as absent.
    func value(_ key: String) -> JinjaValue? {
        switch object[key] {
        case nil, .none?: return nil
        case let value?: return value
        }
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else { throw APIError.invalidParameter(key, "must be a string") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let b) = value else { throw APIError.invalidParameter(key, "must be true or false") }
        return b
    }

    func int(_ key: String, in range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let value = value(key) else { return nil }
        let result: Int
        switch value {
        case .int(let i): result = i
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: result = Int(d)
        default: throw APIError.invalidParameter(key, "must be an integer")
        }
        if let range, !range.contains(result) {
            throw APIError.invalidParameter(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(result)")
        }
        return result
    }

    func number(_ key: String, in range: ClosedRange<Double>, excludingLower: Bool = false) throws -> Double? {
        guard let value = value(key) else { return nil }
        let result: Double
        switch value {
        case .int(let i): result = Double(i)
        case .double(let d): result = d
        default: throw APIError.invalidParameter(key, "must be a number")
        }
        guard result.isFinite, range.contains(result), !(excludingLower && result == range.lowerBound) else {
            let low = excludingLower ? "(\(range.lowerBound)" : "[\(range.lowerBound)"
            throw APIError.invalidParameter(key, "must be in \(low), \(range.upperBound)], got \(result)")
        }
        return result
    }

    /// Sampling parameters shared by chat and completions.
    func sampling(defaultTemperature: Double = 1) throws -> SamplingConfiguration {
        var s = SamplingConfiguration()
        s.temperature = Float(try number("temperature", in: 0...2) ?? defaultTemperature)
        s.topP = Float(try number("top_p", in: 0...1, excludingLower: true) ?? 1)
        let topK = try int("top_k", in: -1...1_000_000) ?? 0
        s.topK = max(0, topK)
        s.minP = Float(try number("min_p", in: 0...1) ?? 0)
        s.presencePenalty = Float(try number("presence_penalty", in: -2...2) ?? 0)
        s.frequencyPenalty = Float(try number("frequency_penalty", in: -2...2) ?? 0)
        s.repetitionPenalty = Float(try number("repetition_penalty", in: 0...10, excludingLower: true) ?? 1)
        s.logitBias = try logitBias()
        if let seed = value("seed") {
            switch seed {
            case .int(let i): s.seed = UInt64(bitPattern: Int64(i))
            case .double(let d) where d.rounded() == d && abs(d) < 9e18: s.seed = UInt64(bitPattern: Int64(d))
            default: throw APIError.invalidParameter("seed", "must be an integer")
            }
        } else {
            s.seed = UInt64.random(in: 0...UInt64.max)
        }
        return s
    }

    /// `logit_bias`: `{"token id": bias}` with biases in [-100, 100], at most 1024 entries (ids are checked against the
    /// vocabulary when generation starts).
    func logitBias() throws -> [Int: Float] {
        guard let value = value("logit_bias") else { return [:] }
        guard case .object(let object) = value else { throw APIError.invalidParameter("logit_bias", "must be an object of token id → bias") }
        guard object.count <= 1024 else { throw APIError.invalidParameter("logit_bias", "at most 1024 entries, got \(object.count)") }
        var biases: [Int: Float] = [:]
        for key in object.keys {
            let bias = object[key] ?? .none
            guard let token = Int(key), token >= 0, String(token) == key else {
                throw APIError.invalidParameter("logit_bias", "keys must be token ids (non-negative integers as strings), got '\(quoted(key, limit: 40))'")
            }
            let number: Double
            switch bias {
            case .int(let i): number = Double(i)
            case .double(let d): number = d
            default: throw APIError.invalidParameter("logit_bias", "the bias of \(token) must be a number")
            }
            guard number.isFinite, (-100...100).contains(number) else {
                throw APIError.invalidParameter("logit_bias", "the bias of \(token) must be in [-100, 100], got \(number)")
            }
            biases[token] = Float(number)
        }
        return biases
    }

    /// `stop`: a string or up to 16 strings.
    func stopStrings() throws -> [String] {
        guard let value = value("stop") else { return [] }
        switch value {
        case .string(let s): return s.isEmpty ? [] : [s]
        case .array(let items):
            guard items.count <= 16 else { throw APIError.invalidParameter("stop", "at most 16 stop sequences, got \(items.count)") }
            return try items.map { item in
                guard case .string(let s) = item else { throw APIError.invalidParameter("stop", "must be a string or an array of strings") }
                return s
            }.filter { !$0.isEmpty }
        default:
            throw APIError.invalidParameter("stop", "must be a string or an array of strings")
        }
    }

    /// `n` must be 1 (one choice per request).
    /// `n`: how many choices to generate for the prompt, 1...`limit`.
    func choiceCount(limit: Int) throws -> Int { try int("n", in: 1...limit) ?? 1 }

    func checkSingleChoice() throws {
        if let n = try int("n"), n != 1 { throw APIError.invalidParameter("n", "only n = 1 is supported, got \(n)") }
    }

    /// `stream` and `stream_options.include_usage`.
    func streaming() throws -> (stream: Bool, includeUsage: Bool) {
        let stream = try bool("stream") ?? false
        guard let options = value("stream_options") else { return (stream, false) }
        guard case .object(let object) = options else { throw APIError.invalidParameter("stream_options", "must be an object") }
        switch object["include_usage"] {
        case nil, .none?: return (stream, false)
        case .bool(let b)?: return (stream, b)
        default: throw APIError.invalidParameter("stream_options.include_usage", "must be true or false")
        }
    }
}
