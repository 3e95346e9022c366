import ArgumentParser
import Foundation
import KujiraFormats
import KujiraHub
#if canImport(Glibc)
import Glibc
#endif

/// `kujira pull`: downloads a model repo (or one GGUF quant of it) into the Hugging Face cache.
struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model from the Hugging Face Hub into the huggingface_hub cache (shared with Python tools).",
        discussion: """
            REPO is org/name. REPO:QUANT (e.g. :Q4_K_M, any case) takes the .gguf files of that quant, all shards of a
            split set; REPO:'GLOB' (with *) takes the paths the glob matches; REPO:PATH one file. Without a suffix:
            config, tokenizer, safetensors (+ index), json, jinja, txt and md files (a GGUF repo with several quants asks
            for one). Downloads resume (after a dropped connection, a Ctrl-C or a later run) and are sha256-checked
            before they enter the cache. Cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
            HF_ENDPOINT picks another hub; HF_TOKEN (or the huggingface-cli login token) opens gated/private repos.
            Then: kujira run --model REPO[:QUANT] "…".
            
            Example: kujira pull unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M
            """)

    @Argument(help: "org/name[:QUANT | :GLOB | :PATH]") var reference: String
    @Option(help: "Branch, tag or commit.") var revision: String = "main"
    @Flag(help: "No progress output.") var quiet = false

    func validate() throws {
        guard ModelReference(parsing: reference) != nil else {
            throw ValidationError("'\(reference)' is not a Hub model id: use org/name or org/name:Q4_K_M")
        }
    }

    func run() async throws {
        let reference = ModelReference(parsing: reference)!
        let environment = ProcessInfo.processInfo.environment
        let cache = HubCache.fromEnvironment(environment)
        let client = HubClient(configuration: .fromEnvironment(environment))
        let renderer = ProgressRenderer(terminal: isatty(STDERR_FILENO) != 0, quiet: quiet)
        let downloader = HubDownloader(client: client, cache: cache) { renderer.update($0) }
        let result: PullResult
        do {
            result = try await downloader.pull(reference, revision: revision)
        } catch {
            renderer.finish()
            await client.shutdown()
            throw error as? HubError ?? error
        }
        renderer.finish()
        await client.shutdown()
        let total = result.files.reduce(0) { $0 + $1.size }
        let fetched = result.downloadedFiles.isEmpty ? "already cached" : "downloaded \(formatByteCount(result.downloadedBytes))"
        print("\(reference.repo)@\(result.commit.prefix(12)): \(result.files.count) file\(result.files.count == 1 ? "" : "s"), \(formatByteCount(total)) (\(fetched))")
        print(result.snapshot.path)
        print("use: kujira run --model \(reference.repo)\(ggufSuffix(reference, result)) \"…\"")
    }

    /// The `--model` suffix that picks what was pulled: the quant asked for, or the one quant a GGUF pull brought.
    private func ggufSuffix(_ reference: ModelReference, _ result: PullResult) -> String {
        if let suffix = reference.suffix, !suffix.contains("*"), !suffix.contains("/"), !suffix.contains(".") { return ":\(suffix)" }
        let quants = FileSelection.quants(in: result.files)
        return result.files.contains(where: { $0.path == "config.json" }) || quants.count != 1 ? "" : ":\(quants[0])"
    }
}

/// `kujira list`: the models in the Hugging Face cache.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the models in the Hugging Face cache (size, revisions).",
                                                    discussion: "Example: kujira list --json")

    @Flag(help: "JSON instead of a table.") var json = false

    func run() throws {
        let cache = HubCache.fromEnvironment()
        let repos = cache.cachedRepos()
        if json {
            let rows = repos.map { repo -> [String: Any] in
                ["repo": repo.repo, "bytes": repo.bytes, "incomplete_bytes": repo.incompleteBytes, "refs": repo.refs, "snapshots": repo.snapshots,
                 "path": repo.directory.path]
            }
            let data = try JSONSerialization.data(withJSONObject: ["cache": cache.root.path, "models": rows], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !repos.isEmpty else { print("no models in \(cache.root.path) (kujira pull org/name to add one)"); return }
        let nameWidth = max(5, repos.map(\.repo.count).max() ?? 0)
        print("MODEL".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + "SIZE".leftPad(9) + "  REVISIONS")
        for repo in repos {
            var revisions = repo.refs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.prefix(12))" }
            let referenced = Set(repo.refs.values)
            revisions += repo.snapshots.filter { !referenced.contains($0) }.map { String($0.prefix(12)) }
            var size = formatByteCount(repo.bytes)
            if repo.incompleteBytes > 0 { size += " (+\(formatByteCount(repo.incompleteBytes)) partial)" }
            print(repo.repo.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + size.leftPad(9) + "  " + revisions.joined(separator: " "))
        }
        print("cache: \(cache.root.path)")
    }
}

/// `kujira rm`: deletes a model's folder from the Hugging Face cache.
struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a model (all its revisions) from the Hugging Face cache.",
                                                    discussion: "Example: kujira rm unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF")

    @Argument(help: "org/name") var repo: String

    func run() throws {
        guard let reference = ModelReference(parsing: repo), reference.suffix == nil else {
            throw ValidationError("'\(repo)' is not a Hub model id (org/name)")
        }
        let cache = HubCache.fromEnvironment()
        let bytes = cache.cachedRepos().first { $0.repo == reference.repo }.map { $0.bytes + $0.incompleteBytes } ?? 0
        guard try cache.remove(reference.repo) else { throw ValidationError("\(reference.repo) is not in the cache (\(cache.root.path))") }
        print("removed \(reference.repo) (\(formatByteCount(bytes))) from \(cache.root.path)")
    }
}

/// Resolves a `--model` value: an existing path as is, `org/name[:QUANT]` through the Hugging Face cache.
func resolveModelArgument(_ argument: String) throws -> String {
    do {
        return CheckpointDirectory.modelDirectory(try ModelResolver.resolve(argument, cache: HubCache.fromEnvironment()) ?? argument)
    } catch let error as HubError {
        throw ValidationError(error.description)
    }
}

/// Draws the pull's progress on stderr: a bar redrawn in place on a terminal (bytes, rate, ETA), else a line every few
/// seconds. Called from the downloader's actor; the lock guards the counters against the final `finish`.
final class ProgressRenderer: @unchecked Sendable {
    private let terminal: Bool
    private let quiet: Bool
    private let lock = NSLock()
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drewBar = false

    init(terminal: Bool, quiet: Bool) { self.terminal = terminal; self.quiet = quiet }

    func update(_ progress: PullProgress) {
        guard !quiet else { return }
        lock.withLock {
            let now = Date()
            switch progress.event {
            case .retrying(let attempt, let reason):
                clearBar()
                write("\(progress.file): \(reason); retrying (\(attempt))\n")
                return
            case .started:
                if terminal { draw(progress, now: now); return }
                let resuming = progress.fileBytes > 0 ? ", resuming at \(formatByteCount(progress.fileBytes))" : ""
                write("downloading \(progress.file) (\(formatByteCount(progress.fileSize))\(resuming))\n")
            case .fileDone, .finished:
                if terminal { draw(progress, now: now) }
            case .bytes:
                guard now.timeIntervalSince(lastDraw) >= (terminal ? 0.1 : 5) else { return }
                lastDraw = now
                if terminal { draw(progress, now: now) } else { write(line(progress, now: now) + "\n") }
            }
        }
    }

    func finish() { lock.withLock { if drewBar { write("\n"); drewBar = false } } }

    private func line(_ p: PullProgress, now: Date) -> String {
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(p.downloadedBytes) / elapsed
        let left = max(0, p.totalBytes - p.downloadedBytes)
        let eta = rate > 0 ? formatDuration(Double(left) / rate) : "--:--"
        return "[\(p.filesDone)/\(p.fileCount)] \(formatByteCount(p.downloadedBytes)) / \(formatByteCount(p.totalBytes))  \(formatByteCount(Int(rate)))/s  ETA \(eta)  \(p.file)"
    }

    private func draw(_ p: PullProgress, now: Date) {
        guard p.totalBytes > 0 else { return }
        let width = 24
        let fraction = min(1, Double(p.downloadedBytes) / Double(p.totalBytes))
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        var text = "\r\u{1B}[2K\(bar) \(String(format: "%3.0f", fraction * 100))% " + line(p, now: now)
        if text.count > 160 { text = String(text.prefix(160)) }
        write(text)
        drewBar = true
    }

    private func clearBar() { if drewBar { write("\r\u{1B}[2K") } }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

private func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds < 360_000 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
}

private extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
