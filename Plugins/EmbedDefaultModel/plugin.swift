import Foundation
import PackagePlugin

/// Compiles `Models/kujira-arith` into KujiraGeneration: `kujira-embed` turns the model's files into a Swift source
/// (base64 string literals), so the default model travels inside the `kujira` binary and any app linking the library
/// (`DefaultModel` writes it out to a cache directory on first use).
@main
struct EmbedDefaultModel: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let model = context.package.directoryURL.appending(path: "Models/kujira-arith")
        let names = try FileManager.default.contentsOfDirectory(atPath: model.path(percentEncoded: false))
            .filter { !$0.hasPrefix(".") }.sorted()
        let inputs = names.map { model.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedModelFiles.swift")
        return [.buildCommand(displayName: "Embedding Models/kujira-arith (\(names.count) files)",
                              executable: try context.tool(named: "kujira-embed").url,
                              arguments: [output.path(percentEncoded: false)] + inputs.map { $0.path(percentEncoded: false) },
                              inputFiles: inputs, outputFiles: [output])]
    }
}
