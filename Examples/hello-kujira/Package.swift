// swift-tools-version: 6.2
import Foundation
import PackageDescription

/// An app that depends on Kujira by version. `KUJIRA_PACKAGE_URL` names the git repository to take the release from
/// (scripts/check-version-dependency.sh points it at a clone of this checkout, tagged 0.1.0).
let kujira = ProcessInfo.processInfo.environment["KUJIRA_PACKAGE_URL"] ?? "https://github.com/kujira-swift/kujira"

let package = Package(
    name: "hello-kujira",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: kujira, from: "0.1.0")],
    targets: [
        .executableTarget(name: "hello-kujira", dependencies: [.product(name: "Kujira", package: "kujira")]),
    ]
)
