import Foundation
import KujiraFormats

/// The model Kujira ships with: a small DeepSeek-V3 (MLA + MoE + MTP) arithmetic reasoner, `Models/kujira-arith` in
/// the source tree, compiled into this library by the EmbedDefaultModel plugin so it travels with a copied binary or an
/// app that links Kujira. The commands whose `--model` is optional use it; `KUJIRA_MODEL` overrides it.
public enum DefaultModel {
    /// Environment variable naming a model directory (or .gguf file) to use instead of the embedded model.
    public static let environmentVariable = "KUJIRA_MODEL"
    /// Environment variable naming Kujira's cache directory (default `$XDG_CACHE_HOME/kujira`, else `~/.cache/kujira`),
    /// where the embedded model is written out on first use.
    public static let cacheVariable = "KUJIRA_CACHE"

    /// The embedded model as a directory the loaders can map: `CACHE/embedded/kujira-arith-DIGEST`, written from the
    /// compiled-in bytes on first use (atomically: a temporary directory renamed into place, so concurrent first runs
    /// and a crash mid-write are harmless). The digest changes whenever the model does.
    public static func embeddedDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let parent = (cacheDirectory(environment: environment) as NSString).appendingPathComponent("embedded")
        let target = (parent as NSString).appendingPathComponent("kujira-arith-\(EmbeddedModelFiles.digest)")
        if FileManager.default.fileExists(atPath: (target as NSString).appendingPathComponent("config.json")) { return target }
        do {
            let temporary = try AtomicFile.prepareDirectory(for: target) { directory in
                for (name, base64) in EmbeddedModelFiles.files {
                    guard let data = base64.withUTF8Buffer({ Data(base64Encoded: Data($0)) }) else {
                        throw DefaultModelError.cannotWriteEmbedded(path: target, reason: "the embedded \(name) is not valid base64")
                    }
                    try data.write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
                }
            }
            defer { try? FileManager.default.removeItem(atPath: temporary) }
            // Another process may have published the same bytes first: then its directory serves.
            if rename(temporary, target) != 0 && !FileManager.default.fileExists(atPath: (target as NSString).appendingPathComponent("config.json")) {
                throw DefaultModelError.cannotWriteEmbedded(path: target, reason: String(cString: strerror(errno)))
            }
            try? AtomicFile.sync(parent)
            return target
        } catch let error as DefaultModelError {
            throw error
        } catch {
            throw DefaultModelError.cannotWriteEmbedded(path: target, reason: "\(error)")
        }
    }

    /// `KUJIRA_CACHE`, else `$XDG_CACHE_HOME/kujira`, else `~/.cache/kujira`, else the temporary directory.
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment[cacheVariable], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return (xdg as NSString).appendingPathComponent("kujira") }
        if let home = environment["HOME"], !home.isEmpty { return (home as NSString).appendingPathComponent(".cache/kujira") }
        return (NSTemporaryDirectory() as NSString).appendingPathComponent("kujira-cache")
    }

    /// The model to load: `KUJIRA_MODEL` if set (and non-empty), else the embedded model. Throws when that path does
    /// not exist or the embedded model cannot be written out, naming the path and how to fix it.
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let override = environment[environmentVariable], !override.isEmpty {
            guard FileManager.default.fileExists(atPath: override) else { throw DefaultModelError.missingOverride(path: override) }
            return override
        }
        return try embeddedDirectory(environment: environment)
    }

    /// `explicit` when given (a `--model` argument), else `directory(environment:)`.
    public static func resolve(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        return try directory(environment: environment)
    }
}

/// Why the default model could not be found.
public enum DefaultModelError: Error, CustomStringConvertible, Equatable {
    case missingOverride(path: String)
    case cannotWriteEmbedded(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missingOverride(path):
            return "\(DefaultModel.environmentVariable)=\(path): no such file or directory"
        case let .cannotWriteEmbedded(path, reason):
            return "no --model given and the embedded model could not be written to \(path) (\(reason)); "
                + "set \(DefaultModel.cacheVariable) to a writable directory, or pass --model DIR or set \(DefaultModel.environmentVariable)"
        }
    }
}
