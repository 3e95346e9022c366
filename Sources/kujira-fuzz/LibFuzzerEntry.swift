#if KUJIRA_LIBFUZZER
import Foundation
import KujiraFuzzTargets

/// libFuzzer's driver (built by scripts/fuzz.sh with `-sanitize=fuzzer -DKUJIRA_LIBFUZZER`): the target comes from
/// `KUJIRA_FUZZ_TARGET`, the tiny checkpoints for the config target from `KUJIRA_FUZZ_FIXTURES`; the command line is
/// libFuzzer's (`-runs=N corpus/ ...`). SwiftPM renames an executable's `main`, so this calls libFuzzer's
/// `LLVMFuzzerRunDriver` from an ordinary `@main` instead of relying on libFuzzer's own `main`.
nonisolated(unsafe) private var target: FuzzTarget = .gguf
nonisolated(unsafe) private var workspace: FuzzWorkspace!

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                       _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

private func testOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    target.run(data, workspace: workspace)
    return 0
}

@main
struct LibFuzzerMain {
    static func main() {
        let environment = ProcessInfo.processInfo.environment
        guard let name = environment["KUJIRA_FUZZ_TARGET"], let chosen = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("set KUJIRA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        target = chosen
        workspace = FuzzWorkspace(fixtures: environment["KUJIRA_FUZZ_FIXTURES"])
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv) { testOneInput($0, $1) })
    }
}
#endif
