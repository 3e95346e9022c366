import Foundation

/// The model Kujira ships with: a small DeepSeek-V3 (MLA + MoE + MTP) arithmetic reasoner in `Models/kujira-arith`,
/// used by the commands whose `--model` is optional. `KUJIRA_MODEL` overrides it.
public enum DefaultModel {
    /// Environment variable naming a model directory (or .gguf file) to use instead of the embedded model.
    public static let environmentVariable = "KUJIRA_MODEL"

    /// The embedded model's directory in this source tree, located from this file's path at build time.
    public static var embeddedDirectory: String {
        URL(fileURLWithPath: #filePath)          // <repo>/Sources/KujiraGeneration/DefaultModel.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Models/kujira-arith").path
    }

    /// The model to load: `KUJIRA_MODEL` if set (and non-empty), else the embedded model. Throws when that path
    /// does not exist (or the embedded directory has no config.json), naming the path and how to fix it.
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let override = environment[environmentVariable], !override.isEmpty {
            guard FileManager.default.fileExists(atPath: override) else { throw DefaultModelError.missingOverride(path: override) }
            return override
        }
        let path = embeddedDirectory
        guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("config.json")) else {
            throw DefaultModelError.missingEmbedded(path: path)
        }
        return path
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
    case missingEmbedded(path: String)

    public var description: String {
        switch self {
        case let .missingOverride(path):
            return "\(DefaultModel.environmentVariable)=\(path): no such file or directory"
        case let .missingEmbedded(path):
            return "no --model given and the embedded model is missing at \(path) (config.json not found); "
                + "pass --model DIR or set \(DefaultModel.environmentVariable)"
        }
    }
}
