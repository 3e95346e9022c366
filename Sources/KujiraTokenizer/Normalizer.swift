import Foundation
import KujiraFormats

/// The HF normalizers a byte-level BPE tokenizer may carry, applied to text between added tokens.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case replace(String, String)
    case prepend(String)
    case sequence([Normalizer])

    /// Applies the normalizer; nil-normalizer pipelines never call this.
    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .replace(let pattern, let content): return text.replacingOccurrences(of: pattern, with: content)
        case .prepend(let prefix): return text.isEmpty ? text : prefix + text
        case .sequence(let normalizers): return normalizers.reduce(text) { $1.apply($0) }
        }
    }

    /// Parses a tokenizer.json `normalizer` object; nil for none / an empty sequence.
    static func parse(_ json: Any?, path: String) throws -> Normalizer? {
        guard let object = json as? [String: Any] else { return nil }
        guard let type = object["type"] as? String else {
            throw TokenizerError.missingField(path: path, field: "normalizer.type")
        }
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend":
            guard let prefix = object["prepend"] as? String else {
                throw TokenizerError.missingField(path: path, field: "normalizer.prepend")
            }
            return .prepend(prefix)
        case "Replace":
            guard let pattern = (object["pattern"] as? [String: Any])?["String"] as? String,
                  let content = object["content"] as? String else {
                throw TokenizerError.unsupported(path: path, feature: "Replace normalizer without a String pattern")
            }
            return .replace(pattern, content)
        case "Sequence":
            guard let list = object["normalizers"] as? [Any] else {
                throw TokenizerError.missingField(path: path, field: "normalizer.normalizers")
            }
            let parts = try list.compactMap { try parse($0, path: path) }
            if parts.isEmpty { return nil }
            return parts.count == 1 ? parts[0] : .sequence(parts)
        default:
            throw TokenizerError.unsupported(path: path, feature: "normalizer type '\(quoted(type, limit: 60))'")
        }
    }
}

/// Special tokens put around a single encoded sequence when `addSpecialTokens` is true.
struct PostProcessor: Sendable, Equatable {
    var prefix: [Int] = []
    var suffix: [Int] = []

    /// Parses a tokenizer.json `post_processor` (TemplateProcessing, ByteLevel, Bert/Roberta, Sequence).
    static func parse(_ json: Any?, path: String) throws -> PostProcessor {
        guard let object = json as? [String: Any] else { return PostProcessor() }
        guard let type = object["type"] as? String else {
            throw TokenizerError.missingField(path: path, field: "post_processor.type")
        }
        switch type {
        case "ByteLevel":
            return PostProcessor()
        case "TemplateProcessing":
            guard let single = object["single"] as? [Any] else {
                throw TokenizerError.missingField(path: path, field: "post_processor.single")
            }
            let specials = object["special_tokens"] as? [String: Any] ?? [:]
            var result = PostProcessor()
            var seenSequence = false
            for item in single {
                guard let item = item as? [String: Any] else { continue }
                if item["Sequence"] != nil {
                    seenSequence = true
                } else if let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String {
                    guard let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [Int] else {
                        throw TokenizerError.missingField(path: path, field: "post_processor.special_tokens.\(quoted(name, limit: 60))")
                    }
                    if seenSequence { result.suffix += ids } else { result.prefix += ids }
                }
            }
            return result
        case "BertProcessing", "RobertaProcessing":
            guard let cls = object["cls"] as? [Any], cls.count == 2, let clsId = cls[1] as? Int,
                  let sep = object["sep"] as? [Any], sep.count == 2, let sepId = sep[1] as? Int else {
                throw TokenizerError.missingField(path: path, field: "post_processor.cls/sep")
            }
            return PostProcessor(prefix: [clsId], suffix: [sepId])
        case "Sequence":
            guard let list = object["processors"] as? [Any] else {
                throw TokenizerError.missingField(path: path, field: "post_processor.processors")
            }
            var result = PostProcessor()
            for item in list {
                let part = try parse(item, path: path)
                result.prefix = part.prefix + result.prefix
                result.suffix += part.suffix
            }
            return result
        default:
            throw TokenizerError.unsupported(path: path, feature: "post_processor type '\(quoted(type, limit: 60))'")
        }
    }
}
