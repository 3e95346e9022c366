import Foundation

/// A training run's checkpoints, crash-consistent: each one is a complete directory `ROOT/step-N/` (a Hugging Face
/// model directory plus the trainer's state), written under a temporary name, fsynced and published with one rename;
/// then `ROOT/latest`, a symlink to it, is replaced atomically and all but the newest `keep` are removed. A kill at any
/// moment leaves the previous checkpoints intact and at most a `.tmp-*` directory, which the next `open` removes.
/// `--model ROOT` and `--resume` find the newest complete one.
public struct CheckpointDirectory: Sendable {
    public let root: String
    public static let latestName = "latest"
    static let stepPrefix = "step-"
    static let temporaryPrefix = ".tmp-"

    public init(root: String) { self.root = root }

    /// The directory of step `step`.
    public func path(step: Int) -> String { (root as NSString).appendingPathComponent("\(Self.stepPrefix)\(step)") }

    /// Publishes the checkpoint of `step`: `write` fills an empty temporary directory, which is then fsynced and renamed
    /// to `step-N` (replacing an older checkpoint of the same step), `latest` is pointed at it and older checkpoints
    /// beyond the newest `keep` (at least 2, so a crash while replacing one never leaves none) are removed.
    @discardableResult
    public func publish(step: Int, keep: Int = 3, write: (String) throws -> Void) throws -> String {
        let target = path(step: step)
        let temporary = try AtomicFile.prepareDirectory(for: target, write: write)
        do {
            if FileManager.default.fileExists(atPath: target) {
                // Not the newest complete checkpoint any more once renamed away: `newest` ignores `.tmp-` names.
                let retired = (root as NSString).appendingPathComponent("\(Self.temporaryPrefix)retired-\(Self.stepPrefix)\(step)-\(getpid())")
                try AtomicFile.rename(target, to: retired)
                try AtomicFile.rename(temporary, to: target)
                try? FileManager.default.removeItem(atPath: retired)
            } else {
                try AtomicFile.rename(temporary, to: target)
            }
            try AtomicFile.sync(root)
            try pointLatest(at: "\(Self.stepPrefix)\(step)")
            try prune(keep: max(keep, 2))
            return target
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// The steps with a complete checkpoint, ascending.
    public func steps() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.compactMap { name in
            guard name.hasPrefix(Self.stepPrefix), let step = Int(name.dropFirst(Self.stepPrefix.count)), step >= 0 else { return nil }
            return step
        }.sorted()
    }

    /// The newest complete checkpoint's directory, or nil when there is none.
    public func newest() -> String? { steps().last.map { path(step: $0) } }

    /// Removes what an interrupted `publish` left behind (`.tmp-*` directories and a dangling `latest`).
    public func removeTemporaries() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where name.hasPrefix(Self.temporaryPrefix) {
            try? FileManager.default.removeItem(atPath: (root as NSString).appendingPathComponent(name))
        }
        if let newest = newest() { try? pointLatest(at: (newest as NSString).lastPathComponent) }
    }

    /// The directory a model path names: for a run directory (one with `step-N` checkpoints) its newest complete
    /// checkpoint, else `path` itself (a model directory, a `step-N`, a file). A run that began in the older flat
    /// layout (files in the run directory itself) and continued here opens its newer `step-N`.
    public static func modelDirectory(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return path }
        return CheckpointDirectory(root: path).newest() ?? path
    }

    /// Replaces `latest` with a symlink to `name` (a sibling symlink renamed over it).
    func pointLatest(at name: String) throws {
        let latest = (root as NSString).appendingPathComponent(Self.latestName)
        let temporary = (root as NSString).appendingPathComponent("\(Self.temporaryPrefix)latest-\(getpid())")
        try? FileManager.default.removeItem(atPath: temporary)
        guard symlink(name, temporary) == 0 else { throw AtomicFile.failure(temporary, "cannot create symlink") }
        try AtomicFile.rename(temporary, to: latest)
        try AtomicFile.sync(root)
    }

    /// Removes complete checkpoints older than the newest `keep`.
    func prune(keep: Int) throws {
        for step in steps().dropLast(keep) { try FileManager.default.removeItem(atPath: path(step: step)) }
    }
}
