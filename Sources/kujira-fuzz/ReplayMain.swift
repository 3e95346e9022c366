#if !KUJIRA_LIBFUZZER
import Foundation
import KujiraFuzzTargets

/// Without libFuzzer: `kujira-fuzz TARGET FILE|DIR...` runs each input once through the target (to reproduce a crash
/// file or replay a corpus with an ordinary build).
@main
struct FuzzReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
            print("usage: kujira-fuzz TARGET FILE|DIR... (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            exit(2)
        }
        let workspace = FuzzWorkspace(fixtures: ProcessInfo.processInfo.environment["KUJIRA_FUZZ_FIXTURES"])
        var count = 0
        for path in arguments.dropFirst() {
            for file in inputs(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target.run(data, workspace: workspace)
                count += 1
            }
        }
        print("kujira-fuzz \(target.rawValue): \(count) inputs, 0 crashes")
    }

    static func inputs(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { (path as NSString).appendingPathComponent($0) }
    }
}
#endif
