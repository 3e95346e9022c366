#if KUJIRA_LIBFUZZER
import Foundation
import KujiraFuzzTargets

/// libFuzzer's entry points (built by scripts/fuzz.sh with `-sanitize=fuzzer -DKUJIRA_LIBFUZZER`): the target comes
/// from `KUJIRA_FUZZ_TARGET`, the tiny checkpoints for the config target from `KUJIRA_FUZZ_FIXTURES`.
nonisolated(unsafe) private var target: FuzzTarget = .gguf
nonisolated(unsafe) private var workspace: FuzzWorkspace!

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    guard let name = environment["KUJIRA_FUZZ_TARGET"], let chosen = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set KUJIRA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    target = chosen
    workspace = FuzzWorkspace(fixtures: environment["KUJIRA_FUZZ_FIXTURES"])
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    target.run(data, workspace: workspace)
    return 0
}
#endif
