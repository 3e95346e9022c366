import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The huggingface_hub cache (`models--{org}--{name}/{blobs,snapshots,refs}`), shared with Python tools: files either
/// side downloaded are reused by the other.
public struct HubCache: Sendable {
    /// The hub cache directory (`…/huggingface/hub`).
    public let root: URL

    public init(root: URL) { self.root = root }

    /// huggingface_hub's rule (constants.py): `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`; `~` and `$VARS` expanded.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> HubCache {
        func nonEmpty(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : expand($0, environment) } }
        if let hub = nonEmpty("HF_HUB_CACHE") ?? nonEmpty("HUGGINGFACE_HUB_CACHE") { return HubCache(root: URL(fileURLWithPath: hub)) }
        let home = nonEmpty("HF_HOME") ?? ((nonEmpty("XDG_CACHE_HOME") ?? expand("~/.cache", environment)) + "/huggingface")
        return HubCache(root: URL(fileURLWithPath: home).appendingPathComponent("hub"))
    }

    /// `huggingface_hub.constants.HF_HOME` (where the `token` file lives).
    public static func hfHome(_ environment: [String: String]) -> String {
        if let home = environment["HF_HOME"], !home.isEmpty { return expand(home, environment) }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : expand($0, environment) } ?? expand("~/.cache", environment)
        return cache + "/huggingface"
    }

    /// `~` → home, `$VAR`/`${VAR}` → its value (os.path.expanduser + expandvars).
    static func expand(_ path: String, _ environment: [String: String]) -> String {
        var result = path
        if result == "~" || result.hasPrefix("~/") {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            result = home + result.dropFirst()
        }
        guard result.contains("$") else { return result }
        var out = "", i = result.startIndex
        while i < result.endIndex {
            guard result[i] == "$" else { out.append(result[i]); i = result.index(after: i); continue }
            var j = result.index(after: i)
            let braced = j < result.endIndex && result[j] == "{"
            if braced { j = result.index(after: j) }
            let start = j
            while j < result.endIndex, result[j].isLetter || result[j].isNumber || result[j] == "_" { j = result.index(after: j) }
            let name = String(result[start..<j])
            if braced, j < result.endIndex, result[j] == "}", let value = environment[name] {
                out += value; i = result.index(after: j)
            } else if !braced, !name.isEmpty, let value = environment[name] {
                out += value; i = j
            } else {
                out.append("$"); i = result.index(after: i)
            }
        }
        return out
    }

    /// `models--org--name` (huggingface_hub's `repo_folder_name`).
    public static func folderName(repo: String) -> String { (["models"] + repo.split(separator: "/").map(String.init)).joined(separator: "--") }

    /// The repo's folder.
    public func repoDirectory(_ repo: String) -> URL { root.appendingPathComponent(Self.folderName(repo: repo)) }

    public func blobsDirectory(_ repo: String) -> URL { repoDirectory(repo).appendingPathComponent("blobs") }
    public func snapshotDirectory(_ repo: String, commit: String) -> URL {
        repoDirectory(repo).appendingPathComponent("snapshots").appendingPathComponent(commit)
    }
    public func refFile(_ repo: String, revision: String) -> URL { repoDirectory(repo).appendingPathComponent("refs").appendingPathComponent(revision) }

    /// The commit a revision points to: the `refs/<revision>` file, or the revision itself when it names a snapshot.
    public func commit(_ repo: String, revision: String) -> String? {
        if let text = try? String(contentsOf: refFile(repo, revision: revision), encoding: .utf8) {
            let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !commit.isEmpty { return commit }
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: snapshotDirectory(repo, commit: revision).path, isDirectory: &isDirectory), isDirectory.boolValue {
            return revision
        }
        return nil
    }

    /// Writes `refs/<revision>` atomically when the revision is not the commit itself (huggingface_hub's rule).
    public func writeRef(_ repo: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let file = refFile(repo, revision: revision)
        if (try? String(contentsOf: file, encoding: .utf8)) == commit { return }
        try writeFileAtomically(Data(commit.utf8), to: file)
    }

    /// Links `snapshots/<commit>/<path>` to `../../blobs/<blob>` (one more `..` per directory in `path`), replacing
    /// whatever was there through a temporary link and a rename.
    public func linkSnapshot(_ repo: String, commit: String, path: String, blob: String) throws {
        let link = snapshotDirectory(repo, commit: commit).appendingPathComponent(path)
        let depth = path.split(separator: "/").count + 1
        let target = String(repeating: "../", count: depth) + "blobs/" + blob
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: link.path), existing == target { return }
        let temporary = link.deletingLastPathComponent().appendingPathComponent(".\(link.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        guard symlink(target, temporary.path) == 0 else { throw HubError.io(path: temporary.path, reason: "cannot create a symlink: \(errnoText())") }
        guard rename(temporary.path, link.path) == 0 else {
            let reason = errnoText()
            unlink(temporary.path)
            throw HubError.io(path: link.path, reason: "cannot place the snapshot link: \(reason)")
        }
    }

    /// What the cache holds for one repo.
    public struct CachedRepo: Sendable, Equatable {
        public var repo: String
        public var directory: URL
        /// Bytes of the blobs (unique files; unfinished `.incomplete` downloads counted separately).
        public var bytes: Int
        public var incompleteBytes: Int
        /// `refs/*` name → commit.
        public var refs: [String: String]
        /// Snapshot commits present.
        public var snapshots: [String]
        public var lastModified: Date?
    }

    /// Every `models--*` folder of the cache, sorted by repo name.
    public func cachedRepos() -> [CachedRepo] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root.path) else { return [] }
        return names.filter { $0.hasPrefix("models--") }.sorted().compactMap { name -> CachedRepo? in
            let parts = name.dropFirst("models--".count).components(separatedBy: "--")
            guard !parts.isEmpty else { return nil }
            let repo = parts.joined(separator: "/")
            let dir = root.appendingPathComponent(name)
            var bytes = 0, incomplete = 0
            var newest: Date?
            let blobs = dir.appendingPathComponent("blobs").path
            for blob in (try? fm.contentsOfDirectory(atPath: blobs)) ?? [] {
                guard let attributes = try? fm.attributesOfItem(atPath: blobs + "/" + blob) else { continue }
                let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
                if blob.hasSuffix(".incomplete") { incomplete += size } else { bytes += size }
                if let date = attributes[.modificationDate] as? Date, newest.map({ date > $0 }) ?? true { newest = date }
            }
            var refs: [String: String] = [:]
            let refsDir = dir.appendingPathComponent("refs")
            if let enumerator = fm.enumerator(atPath: refsDir.path) {
                for case let ref as String in enumerator {
                    if let text = try? String(contentsOfFile: refsDir.path + "/" + ref, encoding: .utf8) {
                        refs[ref] = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                }
            }
            let snapshots = ((try? fm.contentsOfDirectory(atPath: dir.appendingPathComponent("snapshots").path)) ?? []).sorted()
            return CachedRepo(repo: repo, directory: dir, bytes: bytes, incompleteBytes: incomplete, refs: refs, snapshots: snapshots,
                              lastModified: newest)
        }
    }

    /// Removes the repo's whole folder (and its `.locks` folder); false when it was not cached.
    @discardableResult
    public func remove(_ repo: String) throws -> Bool {
        let dir = repoDirectory(repo)
        guard FileManager.default.fileExists(atPath: dir.path) else { return false }
        try FileManager.default.removeItem(at: dir)
        try? FileManager.default.removeItem(at: root.appendingPathComponent(".locks").appendingPathComponent(Self.folderName(repo: repo)))
        return true
    }
}

/// Writes `data` to `url` through a temporary file in the same folder, fsync, rename, and an fsync of the folder.
public func writeFileAtomically(_ data: Data, to url: URL) throws {
    let directory = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HubError.io(path: temporary.path, reason: "cannot create: \(errnoText())") }
    do {
        try data.withUnsafeBytes { try writeAll(fd: fd, $0, path: temporary.path) }
        guard fsync(fd) == 0 else { throw HubError.io(path: temporary.path, reason: "fsync failed: \(errnoText())") }
        close(fd)
    } catch {
        close(fd)
        unlink(temporary.path)
        throw error
    }
    guard rename(temporary.path, url.path) == 0 else {
        let reason = errnoText()
        unlink(temporary.path)
        throw HubError.io(path: url.path, reason: "rename failed: \(reason)")
    }
    syncDirectory(directory.path)
}

/// Writes every byte or throws (ENOSPC → `HubError.diskFull` without a repo, which callers re-label).
func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            if errno == ENOSPC || errno == EDQUOT { throw DiskFull(directory: (path as NSString).deletingLastPathComponent) }
            throw HubError.io(path: path, reason: "write failed: \(errnoText())")
        }
        offset += n
    }
}

/// ENOSPC while writing, before the caller adds which repo/file it was.
struct DiskFull: Error { let directory: String }

/// fsync of a directory, so a rename into it survives a crash.
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
}

func errnoText() -> String { String(cString: strerror(errno)) }
