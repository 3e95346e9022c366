import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `REPO[:SUFFIX]` as given to `kujira pull` and `--model`: a Hub repo id and an optional quant (`Q4_K_M`), glob
/// (`*.safetensors`) or exact path.
public struct ModelReference: Sendable, Equatable {
    public var repo: String
    public var suffix: String?

    public init(repo: String, suffix: String? = nil) { self.repo = repo; self.suffix = suffix }

    /// Parses `org/name` or `org/name:SUFFIX`; nil unless the repo part looks like a Hub id (two parts of letters,
    /// digits, `-`, `_`, `.`, not starting with `.` or `-`).
    public init?(parsing text: String) {
        let repoPart: Substring, suffixPart: Substring?
        if let colon = text.firstIndex(of: ":") {
            repoPart = text[..<colon]
            suffixPart = text[text.index(after: colon)...]
        } else {
            repoPart = text[...]
            suffixPart = nil
        }
        let parts = repoPart.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy(Self.isValidName) else { return nil }
        if let suffixPart, suffixPart.isEmpty { return nil }
        repo = String(repoPart)
        suffix = suffixPart.map(String.init)
    }

    static func isValidName(_ part: Substring) -> Bool {
        guard let first = part.first, first != ".", first != "-", part.count <= 96, !part.contains("--"), !part.hasSuffix(".") else { return false }
        return part.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    public var description: String { suffix.map { "\(repo):\($0)" } ?? repo }
}

/// Which files of a repo a pull takes.
public enum FileSelection {
    /// Extensions a model needs (config, tokenizer, weights, indexes, templates, docs); everything else is left out of a
    /// pull without a suffix (`.bin`/`.pt`/`.h5`/`.onnx` duplicates, images, …).
    public static let neededExtensions: Set<String> = ["json", "safetensors", "gguf", "jinja", "txt", "md", "model", "tiktoken"]

    /// The files `suffix` names: an exact path, a glob (`*`, `?`, `[`; `*` also matches `/`, as huggingface_hub's
    /// `allow_patterns`), or a quant (case-insensitive: the .gguf files whose path contains it as a word — `Q4_K`
    /// does not take `Q4_K_M` when a `Q4_K` file exists — including every `-0000k-of-0000N` shard). Without a suffix:
    /// the needed files, but a repo with several GGUF quants asks for one.
    public static func select(_ files: [HubFile], suffix: String?, repo: String) throws -> [HubFile] {
        guard let suffix else {
            let ggufQuants = quants(in: files)
            let hasSafetensors = files.contains { $0.path.hasSuffix(".safetensors") }
            if ggufQuants.count > 1 && !hasSafetensors {
                throw HubError.invalidRequest("\(repo) has \(ggufQuants.count) GGUF quantizations (\(ggufQuants.joined(separator: ", "))): "
                    + "pick one, e.g. kujira pull \(repo):\(preferredQuant(ggufQuants)) (or \(repo):'*' for everything)")
            }
            let needed = files.filter { neededExtensions.contains(($0.path as NSString).pathExtension.lowercased()) }
            // A safetensors repo that also carries GGUF exports: the safetensors side is the model.
            if hasSafetensors && ggufQuants.count > 1 { return needed.filter { !$0.path.hasSuffix(".gguf") } }
            return needed
        }
        if let exact = files.first(where: { $0.path == suffix }) { return [exact] }
        if suffix.contains(where: { "*?[".contains($0) }) {
            let matched = files.filter { fnmatch(suffix, $0.path, 0) == 0 }
            guard !matched.isEmpty else { throw HubError.invalidRequest("\(repo): no file matches '\(suffix)'") }
            return matched
        }
        let gguf = files.filter { $0.path.lowercased().hasSuffix(".gguf") }
        let word = gguf.filter { containsWord($0.path, suffix) }
        let matched = word.isEmpty ? gguf.filter { $0.path.lowercased().contains(suffix.lowercased()) } : word
        guard !matched.isEmpty else {
            let available = quants(in: files)
            throw HubError.invalidRequest("\(repo): no .gguf file matches quant '\(suffix)'"
                + (available.isEmpty ? " (the repo has no GGUF files)" : "; available: \(available.joined(separator: ", "))"))
        }
        return matched
    }

    /// True when `path` contains `word` (case-insensitive) not directly between letters, digits or `_`.
    static func containsWord(_ path: String, _ word: String) -> Bool {
        let haystack = Array(path.lowercased().utf8), needle = Array(word.lowercased().utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        func isWordByte(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7a) || b == 0x5f }
        for start in 0...(haystack.count - needle.count) where Array(haystack[start..<start + needle.count]) == needle {
            let before = start == 0 || !isWordByte(haystack[start - 1])
            let end = start + needle.count
            let after = end == haystack.count || !isWordByte(haystack[end])
            if before && after { return true }
        }
        return false
    }

    /// The quant names of a repo's .gguf files (`X-Q4_K_M-00001-of-00003.gguf` → `Q4_K_M`), sorted, unique.
    public static func quants(in files: [HubFile]) -> [String] {
        var found = Set<String>()
        for file in files where file.path.lowercased().hasSuffix(".gguf") {
            var name = (file.path as NSString).lastPathComponent
            name = String(name.dropLast(5))
            if let range = name.range(of: #"-\d{5}-of-\d{5}$"#, options: .regularExpression) { name.removeSubrange(range) }
            if name.lowercased().contains("mmproj") { continue }
            if let token = name.split(whereSeparator: { $0 == "-" || $0 == "." }).last { found.insert(String(token)) }
        }
        return found.sorted()
    }

    static func preferredQuant(_ quants: [String]) -> String {
        quants.first { $0.uppercased() == "Q4_K_M" } ?? quants.first { $0.uppercased().hasPrefix("Q4") } ?? quants[0]
    }

    /// `NAME-0000k-of-0000N.gguf` → (k, N).
    public static func shardIndex(_ path: String) -> (Int, Int)? {
        guard let range = path.range(of: #"-(\d{5})-of-(\d{5})\.gguf$"#, options: .regularExpression) else { return nil }
        let digits = path[range].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return digits.count == 2 ? (digits[0], digits[1]) : nil
    }
}
