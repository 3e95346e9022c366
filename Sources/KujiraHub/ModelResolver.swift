import Foundation

/// Turns a `--model` argument into a local path: an existing path as is; `org/name[:QUANT]` through the Hub cache
/// (the snapshot directory, or a .gguf file of it for a quant suffix or a GGUF-only repo).
public enum ModelResolver {
    /// nil when `argument` is neither an existing path nor a repo id; throws when it is a repo id that is not (fully)
    /// cached, telling the user to `kujira pull` it.
    public static func resolve(_ argument: String, cache: HubCache, revision: String = "main") throws -> String? {
        if FileManager.default.fileExists(atPath: argument) { return argument }
        guard let reference = ModelReference(parsing: argument) else { return nil }
        let pullHint = "run `kujira pull \(reference.description)` first"
        guard let commit = cache.commit(reference.repo, revision: revision) ?? newestSnapshot(reference.repo, cache: cache) else {
            throw HubError.invalidRequest("--model \(argument): no such path, and \(reference.repo) is not in the Hugging Face cache (\(cache.root.path)); \(pullHint)")
        }
        let snapshot = cache.snapshotDirectory(reference.repo, commit: commit)
        let files = snapshotFiles(snapshot)
        let ggufs = files.filter { $0.lowercased().hasSuffix(".gguf") && !$0.lowercased().contains("mmproj") }
        let listing = ggufs.map { HubFile(path: $0, size: 0, gitOID: "", sha256: nil) }
        if let suffix = reference.suffix {
            let matched: [HubFile]
            do { matched = try FileSelection.select(listing, suffix: suffix, repo: reference.repo) } catch {
                let have = FileSelection.quants(in: listing)
                throw HubError.invalidRequest("--model \(argument): the cached snapshot of \(reference.repo) has no .gguf file for '\(suffix)'"
                    + (have.isEmpty ? "" : " (cached: \(have.joined(separator: ", ")))") + "; \(pullHint)")
            }
            return snapshot.appendingPathComponent(try firstShard(matched.map(\.path), argument: argument, pullHint: pullHint)).path
        }
        if files.contains("config.json") { return snapshot.path }
        if !ggufs.isEmpty {
            let quants = FileSelection.quants(in: listing)
            guard quants.count <= 1 else {
                throw HubError.invalidRequest("--model \(argument): the cache holds several quantizations (\(quants.joined(separator: ", "))); "
                    + "name one, e.g. --model \(reference.repo):\(quants[0])")
            }
            return snapshot.appendingPathComponent(try firstShard(ggufs, argument: argument, pullHint: pullHint)).path
        }
        throw HubError.invalidRequest("--model \(argument): the cached snapshot \(snapshot.path) has neither config.json nor a .gguf file; \(pullHint)")
    }

    /// The first shard of a split set (every shard must be there), or the single file.
    static func firstShard(_ paths: [String], argument: String, pullHint: String) throws -> String {
        let sorted = paths.sorted()
        if let (_, count) = FileSelection.shardIndex(sorted[0]) {
            let shards = sorted.filter { FileSelection.shardIndex($0) != nil }
            guard shards.count >= count else {
                throw HubError.invalidRequest("--model \(argument): only \(shards.count) of \(count) shards are cached; \(pullHint)")
            }
        }
        return sorted[0]
    }

    /// Snapshot commits by modification time, newest first; used when there is no `refs/main` (a pull by commit).
    static func newestSnapshot(_ repo: String, cache: HubCache) -> String? {
        let dir = cache.repoDirectory(repo).appendingPathComponent("snapshots")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.max { a, b in
            let da = (try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(a).path)[.modificationDate] as? Date) ?? .distantPast
            let db = (try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(b).path)[.modificationDate] as? Date) ?? .distantPast
            return da < db
        }
    }

    /// Repo-relative paths of the snapshot's entries whose link target exists.
    static func snapshotFiles(_ snapshot: URL) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: snapshot.path) else { return [] }
        var result: [String] = []
        for case let path as String in enumerator {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: snapshot.appendingPathComponent(path).path, isDirectory: &isDirectory), !isDirectory.boolValue {
                result.append(path)
            }
        }
        return result
    }
}
