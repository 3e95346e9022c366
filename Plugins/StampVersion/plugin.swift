import Foundation
import PackagePlugin

/// Bakes the build's version into the `kujira` executable: before every build, `git describe --tags --always --dirty`
/// of the package (or "unknown" outside a git checkout) is written to `KujiraVersion.swift` (`kujira --version`).
@main
struct StampVersion: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let package = context.package.directoryURL.path(percentEncoded: false)
        let file = output.appending(path: "KujiraVersion.swift").path(percentEncoded: false)
        let script = """
            mkdir -p "$(dirname "$2")"
            v=$(git -C "$1" describe --tags --always --dirty 2>/dev/null || echo unknown)
            printf '/// The version baked in at build time (`git describe --tags --always --dirty`).\\nlet kujiraVersion = "%s"\\n' "$v" > "$2.tmp"
            if ! cmp -s "$2.tmp" "$2"; then mv "$2.tmp" "$2"; else rm -f "$2.tmp"; fi
            """
        return [.prebuildCommand(displayName: "Stamping the kujira version", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script, "stamp", package, file], outputFilesDirectory: output)]
    }
}
