import Foundation

/// Atomic, durable file replacement: write a hidden sibling temporary file, fsync it, rename it over the target, fsync
/// the directory. After a crash the target holds either the old or the new bytes, never a mix, and once `write`
/// returns the new bytes survive a power loss.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: temporary)
            try sync(temporary.path)
            try rename(temporary.path, to: url.path)
            try sync(url.deletingLastPathComponent().path)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// fsync of a file or a directory (a directory's fsync makes the names created or renamed in it durable).
    public static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure(path, "cannot open to sync") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure(path, "fsync failed") }
    }

    /// fsync of every regular file below `directory` and of every directory in it, the directory itself last.
    public static func syncTree(_ directory: String) throws {
        let names = try FileManager.default.subpathsOfDirectory(atPath: directory)
        for name in names.sorted(by: { $0.count > $1.count }) { try sync((directory as NSString).appendingPathComponent(name)) }
        try sync(directory)
    }

    /// Builds the directory that will become `target`: `write` fills an empty hidden sibling `.tmp-NAME-PID-RANDOM`,
    /// which is then fsynced (files and directory) and returned for the caller to rename into place. On an error the
    /// temporary directory is removed. A crash leaves at most a `.tmp-` directory, never a partial `target`.
    public static func prepareDirectory(for target: String, write: (String) throws -> Void) throws -> String {
        let parent = (target as NSString).deletingLastPathComponent
        let name = (target as NSString).lastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let temporary = (parent as NSString).appendingPathComponent(".tmp-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        do {
            try write(temporary)
            try syncTree(temporary)
            return temporary
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// `rename(2)`: atomic within one file system.
    public static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else { throw failure(to, "cannot rename \(from) here") }
    }

    static func failure(_ path: String, _ what: String) -> CocoaError {
        CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "\(path): \(what): \(String(cString: strerror(errno)))"])
    }
}
