import AsyncHTTPClient
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a pull, reported to the caller's callback (bytes are of the files being downloaded, not those reused).
public struct PullProgress: Sendable {
    /// What happened: a file started (possibly resuming), bytes arrived, a file is in place, a retry, the pull ended.
    public enum Event: Sendable { case started, bytes, fileDone, retrying(attempt: Int, reason: String), finished }
    public var event: Event
    public var file: String
    public var fileBytes: Int
    public var fileSize: Int
    /// Bytes downloaded this run, and the total still needed when the pull started (so done + previously had).
    public var downloadedBytes: Int
    public var totalBytes: Int
    public var filesDone: Int
    public var fileCount: Int
}

/// The outcome of a pull.
public struct PullResult: Sendable {
    public var repo: String
    public var commit: String
    public var snapshot: URL
    public var files: [HubFile]
    /// Bytes fetched over the network this run (0 when everything was cached).
    public var downloadedBytes: Int
    /// Files whose blob had to be downloaded (completely or resumed).
    public var downloadedFiles: [String]
}

/// Downloads repo files into the huggingface_hub cache: resumable (`blobs/<id>.incomplete` + HTTP Range, retried with
/// backoff within a run and continued by a later run), checksum-verified before the blob is published (fsync + rename),
/// then linked from `snapshots/<commit>/`. An actor: it owns the progress counters of the pull in flight.
public actor HubDownloader {
    public let client: HubClient
    public let cache: HubCache
    /// Attempts per file after a dropped connection or a 5xx, and the first backoff (doubled each time).
    public var maxRetries = 4
    public var initialBackoff: Duration = .milliseconds(500)
    private var downloaded = 0
    private var total = 0
    private var filesDone = 0
    private var fileCount = 0
    private let progress: @Sendable (PullProgress) -> Void

    public init(client: HubClient, cache: HubCache, progress: @escaping @Sendable (PullProgress) -> Void = { _ in }) {
        self.client = client
        self.cache = cache
        self.progress = progress
    }

    /// Sets the retry policy (tests use a short backoff).
    public func setRetryPolicy(maxRetries: Int, initialBackoff: Duration) {
        self.maxRetries = maxRetries
        self.initialBackoff = initialBackoff
    }

    /// Pulls `reference` at `revision`: resolves the commit, lists and selects files, downloads what the cache lacks.
    public func pull(_ reference: ModelReference, revision: String = "main") async throws -> PullResult {
        let repo = reference.repo
        let commit = isCommitHash(revision) ? revision : try await client.commit(repo: repo, revision: revision)
        let files = try FileSelection.select(try await client.files(repo: repo, revision: commit), suffix: reference.suffix, repo: repo)
        try pullFiles(files, repo: repo, revision: revision, commit: commit)
        var fetched: [String] = []
        for file in files {
            if try await fetch(file, repo: repo, commit: commit) { fetched.append(file.path) }
            filesDone += 1
            report(.fileDone, file: file.path, bytes: file.size, size: file.size)
        }
        try cache.writeRef(repo, revision: revision, commit: commit)
        report(.finished, file: "", bytes: 0, size: 0)
        return PullResult(repo: repo, commit: commit, snapshot: cache.snapshotDirectory(repo, commit: commit), files: files,
                          downloadedBytes: downloaded, downloadedFiles: fetched)
    }

    /// Counts what is left to fetch and checks the free space for it.
    private func pullFiles(_ files: [HubFile], repo: String, revision: String, commit: String) throws {
        let blobs = cache.blobsDirectory(repo)
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: cache.snapshotDirectory(repo, commit: commit), withIntermediateDirectories: true)
        writeCacheDirTag()
        downloaded = 0; filesDone = 0; fileCount = files.count
        var seen = Set<String>()
        total = files.reduce(0) { sum, file in
            guard seen.insert(file.blobName).inserted, !FileManager.default.fileExists(atPath: blobs.appendingPathComponent(file.blobName).path) else { return sum }
            let partial = fileSize(blobs.appendingPathComponent(file.blobName + ".incomplete").path) ?? 0
            return sum + max(0, file.size - partial)
        }
        var fs = statvfs()
        if statvfs(blobs.path, &fs) == 0 {
            let available = Int(fs.f_bavail) * Int(fs.f_frsize)
            if total > available { throw HubError.diskFull(repo: repo, file: nil, directory: blobs.path, needed: total, available: available) }
        }
    }

    /// huggingface_hub tags its cache for backup tools (CACHEDIR.TAG); we do the same, once.
    private func writeCacheDirTag() {
        let tag = cache.root.appendingPathComponent("CACHEDIR.TAG")
        guard !FileManager.default.fileExists(atPath: tag.path) else { return }
        try? writeFileAtomically(Data("Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n".utf8), to: tag)
    }

    /// Makes `snapshots/<commit>/<path>` point at a verified blob; true when bytes were downloaded for it.
    private func fetch(_ file: HubFile, repo: String, commit: String) async throws -> Bool {
        let blob = cache.blobsDirectory(repo).appendingPathComponent(file.blobName)
        let link = cache.snapshotDirectory(repo, commit: commit).appendingPathComponent(file.path)
        if FileManager.default.fileExists(atPath: link.path), FileManager.default.fileExists(atPath: blob.path) {
            try cache.linkSnapshot(repo, commit: commit, path: file.path, blob: file.blobName)
            return false
        }
        var didDownload = false
        if !FileManager.default.fileExists(atPath: blob.path) {
            try await downloadBlob(file, repo: repo, commit: commit, to: blob)
            didDownload = true
        }
        try cache.linkSnapshot(repo, commit: commit, path: file.path, blob: file.blobName)
        return didDownload
    }

    /// Downloads into `<blob>.incomplete` (resuming what is there), verifies, and renames it to `<blob>`.
    private func downloadBlob(_ file: HubFile, repo: String, commit: String, to blob: URL) async throws {
        let partialPath = blob.path + ".incomplete"
        let fd = open(partialPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubError.io(path: partialPath, reason: "cannot open: \(errnoText())") }
        defer { close(fd) }
        // Another kujira (or a resumed run) writing the same file would interleave bytes: one writer at a time.
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { throw HubError.busy(repo: repo, file: file.path, path: partialPath) }

        var hasher = ContentHasher(file: file)
        var have = try rehash(fd: fd, path: partialPath, into: &hasher)
        if have > file.size {  // longer than the file: not ours to trust
            guard ftruncate(fd, 0) == 0 else { throw HubError.io(path: partialPath, reason: "truncate failed: \(errnoText())") }
            hasher = ContentHasher(file: file); have = 0
        }
        report(.started, file: file.path, bytes: have, size: file.size)
        var attempt = 0
        while have < file.size {
            do {
                have = try await receive(file, repo: repo, commit: commit, fd: fd, path: partialPath, from: have, hasher: &hasher)
            } catch let error as DownloadInterrupted {
                attempt += 1
                guard attempt <= maxRetries else { throw HubError.network(repo: repo, file: file.path, reason: error.reason) }
                report(.retrying(attempt: attempt, reason: error.reason), file: file.path, bytes: have, size: file.size)
                try await Task.sleep(for: initialBackoff * (1 << (attempt - 1)))
                // The bytes on disk are the truth: re-read them in case the last write was cut.
                hasher = ContentHasher(file: file)
                have = try rehash(fd: fd, path: partialPath, into: &hasher)
            }
        }
        let actual = hasher.hexDigest()
        guard have == file.size else {
            unlink(partialPath)
            throw HubError.sizeMismatch(repo: repo, file: file.path, expected: file.size, actual: have)
        }
        guard actual == hasher.expected else {
            unlink(partialPath)
            throw HubError.checksumMismatch(repo: repo, file: file.path, expected: hasher.expected, actual: actual)
        }
        guard fsync(fd) == 0 else { throw HubError.io(path: partialPath, reason: "fsync failed: \(errnoText())") }
        guard rename(partialPath, blob.path) == 0 else { throw HubError.io(path: blob.path, reason: "rename failed: \(errnoText())") }
        syncDirectory(blob.deletingLastPathComponent().path)
    }

    /// One HTTP request from `offset`: appends what arrives, returns the new length. Retryable failures throw
    /// `DownloadInterrupted`; 4xx and disk errors are final.
    private func receive(_ file: HubFile, repo: String, commit: String, fd: Int32, path: String, from offset: Int,
                         hasher: inout ContentHasher) async throws -> Int {
        var have = offset
        let response: HTTPClientResponse
        do {
            response = try await client.download(repo: repo, revision: commit, path: file.path, offset: offset)
        } catch let error as HubError {
            if case .httpStatus(_, _, let status) = error, status >= 500 || status == 429 { throw DownloadInterrupted(reason: "HTTP \(status)") }
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw DownloadInterrupted(reason: describeNetworkError(error))
        }
        switch Int(response.status.code) {
        case 206:
            // A 206 without Content-Range is taken to start where asked; a different start is refused.
            let range = response.headers.first(name: "Content-Range") ?? "bytes \(offset)-"
            guard range.hasPrefix("bytes \(offset)-") else {
                throw HubError.badResponse(repo: repo, reason: "\(file.path): the server answered a different byte range than asked")
            }
        case 416:
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard offset >= file.size else {
                throw HubError.badResponse(repo: repo, reason: "\(file.path): range \(offset)- refused (416) though the file is \(file.size) bytes")
            }
            return offset
        default:  // 200: the whole file (the server ignored Range): start over
            if offset > 0 {
                guard ftruncate(fd, 0) == 0 else { throw HubError.io(path: path, reason: "truncate failed: \(errnoText())") }
                hasher = ContentHasher(file: file)
                have = 0
                report(.bytes, file: file.path, bytes: 0, size: file.size)
            }
        }
        guard lseek(fd, off_t(have), SEEK_SET) >= 0 else { throw HubError.io(path: path, reason: "seek failed: \(errnoText())") }
        do {
            for try await buffer in response.body {
                try Task.checkCancellation()
                let count = buffer.readableBytes
                guard have + count <= file.size else {
                    throw HubError.sizeMismatch(repo: repo, file: file.path, expected: file.size, actual: have + count)
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    do { try writeAll(fd: fd, bytes, path: path) } catch let full as DiskFull {
                        throw HubError.diskFull(repo: repo, file: file.path, directory: full.directory, needed: nil, available: nil)
                    }
                    hasher.update(bytes)
                }
                have += count
                downloaded += count
                report(.bytes, file: file.path, bytes: have, size: file.size)
            }
        } catch let error as HubError {
            if case .sizeMismatch = error { unlink(path) }
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw DownloadInterrupted(reason: describeNetworkError(error))
        }
        if have < file.size { throw DownloadInterrupted(reason: "the connection closed after \(have) of \(file.size) bytes") }
        return have
    }

    /// Hashes what `fd` already holds (a resumed `.incomplete`); returns its length.
    private func rehash(fd: Int32, path: String, into hasher: inout ContentHasher) throws -> Int {
        guard lseek(fd, 0, SEEK_SET) >= 0 else { throw HubError.io(path: path, reason: "seek failed: \(errnoText())") }
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw HubError.io(path: path, reason: "read failed: \(errnoText())") }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            total += n
        }
        return total
    }

    private func report(_ event: PullProgress.Event, file: String, bytes: Int, size: Int) {
        progress(PullProgress(event: event, file: file, fileBytes: bytes, fileSize: size, downloadedBytes: downloaded, totalBytes: total,
                              filesDone: filesDone, fileCount: fileCount))
    }
}

/// A dropped connection, a truncated body or a 5xx: worth another request from where the file stopped.
struct DownloadInterrupted: Error { let reason: String }

/// The checksum the Hub publishes for a file: sha256 for LFS files, git's blob id otherwise.
struct ContentHasher {
    private var sha256: SHA256Digest?
    private var sha1: GitBlobSHA1?
    let expected: String

    init(file: HubFile) {
        if let sha = file.sha256 { sha256 = SHA256Digest(); expected = sha } else { sha1 = GitBlobSHA1(size: file.size); expected = file.gitOID }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if sha256 != nil { sha256!.update(bytes) } else { sha1!.update(bytes) }
    }

    func hexDigest() -> String { sha256?.hexDigest() ?? sha1!.hexDigest() }
}

func fileSize(_ path: String) -> Int? {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : nil
}
