import ArgumentParser
import Foundation
import KujiraTensor

/// `--threads`: how many cores the kernels use.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads for the kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1") }
    }

    var effectiveThreads: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    /// Applies the setting to the shared kernel thread pool.
    func apply() { ThreadPool.shared.setActiveThreads(effectiveThreads) }
}
