import Foundation

/// Why a Hub request or a pull failed; every case names the repo (and file) and what to do, never response bytes or
/// the token.
public enum HubError: Error, CustomStringConvertible, Equatable {
    /// 401/403: gated or private repo, or a token without access.
    case unauthorized(repo: String, file: String?, tokenSent: Bool, endpoint: String)
    /// 404: no such repo, revision or file (`what` says which, from the Hub's `X-Error-Code` when given).
    case notFound(repo: String, revision: String, file: String?, what: String)
    /// The bytes received do not have the checksum the Hub lists; the download was discarded.
    case checksumMismatch(repo: String, file: String, expected: String, actual: String)
    /// The size received differs from the listed size; the download was discarded.
    case sizeMismatch(repo: String, file: String, expected: Int, actual: Int)
    /// ENOSPC, or not enough free space for what is left to download.
    case diskFull(repo: String, file: String?, directory: String, needed: Int?, available: Int?)
    /// Any other HTTP status (after retries for 5xx).
    case httpStatus(repo: String, file: String?, status: Int)
    /// The connection failed or dropped and retries did not help.
    case network(repo: String, file: String?, reason: String)
    /// The Hub answered something that is not the JSON it documents.
    case badResponse(repo: String, reason: String)
    /// A local file-system error.
    case io(path: String, reason: String)
    /// Bad user input: repo id, pattern or quant that selects nothing, etc.
    case invalidRequest(String)
    /// Another process is downloading the same blob right now.
    case busy(repo: String, file: String, path: String)

    public var description: String {
        switch self {
        case let .unauthorized(repo, file, tokenSent, endpoint):
            let target = file.map { "\(repo)/\($0)" } ?? repo
            if tokenSent {
                return "\(target): access refused with the HF_TOKEN given (401/403). Check that the token is valid and that its account "
                    + "has access to \(repo) (for a gated model, accept its conditions at \(endpoint)/\(repo))."
            }
            return "\(target): authentication required (401/403): \(repo) is gated or private. Set HF_TOKEN to a Hugging Face access "
                + "token (https://huggingface.co/settings/tokens) of an account with access (for a gated model, accept its conditions at \(endpoint)/\(repo))."
        case let .notFound(repo, revision, file, what):
            switch what {
            case "RevisionNotFound": return "\(repo): no revision '\(revision)' (404)"
            case "EntryNotFound": return "\(repo)@\(revision): no file '\(file ?? "?")' (404)"
            default:
                if let file { return "\(repo)@\(revision)/\(file): not found (404)" }
                return "\(repo): no such model repository (or revision '\(revision)') on the Hub (404); check the name — private repos also answer 404 without HF_TOKEN"
            }
        case let .checksumMismatch(repo, file, expected, actual):
            return "\(repo)/\(file): checksum mismatch (expected \(expected), got \(actual)); the download was discarded — run the pull again"
        case let .sizeMismatch(repo, file, expected, actual):
            return "\(repo)/\(file): size mismatch (expected \(expected) bytes, got \(actual)); the download was discarded — run the pull again"
        case let .diskFull(repo, file, directory, needed, available):
            let target = file.map { "\(repo)/\($0)" } ?? repo
            if let needed, let available {
                return "\(target): not enough disk space in \(directory): \(formatByteCount(needed)) still to download, \(formatByteCount(available)) free"
            }
            return "\(target): disk full (ENOSPC) writing into \(directory); free some space and run the pull again (it resumes)"
        case let .httpStatus(repo, file, status):
            return "\(file.map { "\(repo)/\($0)" } ?? repo): the Hub answered HTTP \(status)"
        case let .network(repo, file, reason):
            return "\(file.map { "\(repo)/\($0)" } ?? repo): network error (\(reason)); run the pull again to resume"
        case let .badResponse(repo, reason):
            return "\(repo): unexpected answer from the Hub (\(reason))"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .invalidRequest(message):
            return message
        case let .busy(repo, file, path):
            return "\(repo)/\(file): another process is downloading it (\(path) is locked); wait for it or stop it"
        }
    }
}

/// "1.5 GB"-style sizes (decimal units, as the Hub shows them).
public func formatByteCount(_ bytes: Int) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: value >= 100 ? "%.0f" : "%.1f", value) + " " + units[unit]
}
