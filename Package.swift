// swift-tools-version: 6.2
import PackageDescription

/// No target is compiled for a chosen CPU: the hot kernels are C (`CKujiraKernels`) with per-function target attributes,
/// picked at run time (`KernelISA`), so one build runs on every x86-64 and the Swift kernels serve other CPUs.
///
/// Kujira's own checkout (its tests and CI) optimises the kernels in debug builds too: unoptimised SIMD code is ~50x
/// slower, which would make the tests that run real models take minutes. A package that depends on Kujira gets it in a
/// `checkouts` directory (SwiftPM's `.build/checkouts`, Xcode's `SourcePackages/checkouts`) and then sees no `unsafeFlags`
/// in any target it links (scripts/check-version-dependency.sh checks this on the resolved checkout).
let isDependency = Context.packageDirectory.contains("/checkouts/")
let kernelSettings: [SwiftSetting] = isDependency ? [] : [.unsafeFlags(["-O"], .when(configuration: .debug))]
let kernelCSettings: [CSetting] = isDependency ? [] : [.unsafeFlags(["-O2"], .when(configuration: .debug))]

/// Kujira: DeepSeek-style language models in pure Swift.
/// Targets depend one way: Tensor → Formats → Tokenizer → Models → Generation → CLI.
let package = Package(
    name: "Kujira",
    platforms: [.macOS(.v14)],
    products: [
        // The CLI's module is KujiraCLI (a `kujira` module beside `Kujira` would clash on case-insensitive file systems).
        .executable(name: "kujira", targets: ["KujiraCLI"]),
        // The one product an app needs: load a model, chat and complete with streamed events (docs/library.md).
        .library(name: "Kujira", targets: ["Kujira"]),
        .library(name: "KujiraTensor", targets: ["KujiraTensor"]),
        .library(name: "KujiraFormats", targets: ["KujiraFormats"]),
        .library(name: "KujiraTokenizer", targets: ["KujiraTokenizer"]),
        .library(name: "KujiraModels", targets: ["KujiraModels"]),
        .library(name: "KujiraGeneration", targets: ["KujiraGeneration"]),
        .library(name: "KujiraServer", targets: ["KujiraServer"]),
        .library(name: "KujiraTraining", targets: ["KujiraTraining"]),
        .library(name: "KujiraHub", targets: ["KujiraHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.100.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        // `swift package generate-documentation --target Kujira` (scripts/check-docs.sh).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // The one C target: the hot kernels with per-function target attributes (AVX-512 VNNI and AVX2 + FMA + F16C),
        // which Swift cannot express; stubs off x86-64, where KujiraTensor's Swift kernels serve. See docs/kernels.md.
        .target(name: "CKujiraKernels", cSettings: kernelCSettings),
        .target(name: "KujiraTensor", dependencies: ["CKujiraKernels"], swiftSettings: kernelSettings),
        .target(name: "KujiraFormats", dependencies: ["KujiraTensor"]),
        .target(name: "KujiraTokenizer", dependencies: ["KujiraFormats"]),
        .target(name: "KujiraModels", dependencies: ["KujiraTensor", "KujiraFormats"]),
        // The default model (Models/kujira-arith) is compiled in by the EmbedDefaultModel plugin, so a copied binary
        // or an app linking the library finds it without the source tree.
        .target(name: "KujiraGeneration", dependencies: ["KujiraTensor", "KujiraModels", "KujiraTokenizer"],
                plugins: ["EmbedDefaultModel"]),
        .executableTarget(name: "kujira-embed"),
        .plugin(name: "EmbedDefaultModel", capability: .buildTool(), dependencies: ["kujira-embed"]),
        // `kujira --version`: git describe of the checkout, stamped before each build.
        .plugin(name: "StampVersion", capability: .buildTool()),
        .target(
            name: "KujiraServer",
            dependencies: [
                "KujiraTensor", "KujiraGeneration", "KujiraModels", "KujiraTokenizer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // `kujira pull`: the Hugging Face Hub client and its cache (huggingface_hub's layout). SHA-256 is hand-written
        // (Digests.swift) and, like the kernels, optimised in debug builds of this checkout so the tests hash at a useful speed.
        .target(
            name: "KujiraHub",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: kernelSettings
        ),
        // The small async API over the pipeline (ChatModel); the targets above stay available for lower-level use.
        .target(name: "Kujira", dependencies: ["KujiraGeneration", "KujiraModels", "KujiraTokenizer", "KujiraFormats", "KujiraHub"]),
        // Training's loops are optimised in debug builds too (the tests train small models).
        .target(name: "KujiraTraining", dependencies: ["KujiraTensor", "KujiraFormats", "KujiraModels", "KujiraGeneration"],
                swiftSettings: kernelSettings),
        // Fuzzing (scripts/fuzz.sh): the targets as a library, replayed by KujiraFuzzTests; `kujira-fuzz` is libFuzzer's
        // driver when built with `-sanitize=fuzzer -DKUJIRA_LIBFUZZER`, a corpus replayer otherwise.
        .target(name: "KujiraFuzzTargets", dependencies: ["KujiraFormats", "KujiraTokenizer", "KujiraModels", "KujiraServer", "KujiraTensor"]),
        .executableTarget(name: "kujira-fuzz", dependencies: ["KujiraFuzzTargets"]),
        .executableTarget(
            name: "KujiraCLI",
            dependencies: [
                "KujiraTensor", "KujiraFormats", "KujiraTokenizer", "KujiraModels", "KujiraGeneration", "KujiraTraining", "KujiraServer", "KujiraHub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["StampVersion"]
        ),
        .testTarget(name: "KujiraTensorTests", dependencies: ["KujiraTensor", "CKujiraKernels"]),
        .testTarget(name: "KujiraFormatsTests", dependencies: ["KujiraFormats"]),
        .testTarget(name: "KujiraTokenizerTests", dependencies: ["KujiraTokenizer"]),
        // Test support: counts heap allocations by interposing malloc & co. (exported from the test executable).
        .target(name: "AllocationCounting", path: "Tests/AllocationCounting"),
        .testTarget(name: "KujiraModelsTests", dependencies: ["KujiraModels", "AllocationCounting"],
                    linkerSettings: [.unsafeFlags(["malloc", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign"]
                        .flatMap { ["-Xlinker", "--export-dynamic-symbol=\($0)"] }, .when(platforms: [.linux]))]),
        .testTarget(name: "KujiraGenerationTests", dependencies: ["KujiraGeneration"]),
        .testTarget(
            name: "KujiraServerTests",
            dependencies: [
                "KujiraServer", "KujiraGeneration",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "KujiraHubTests",
            dependencies: ["KujiraHub", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "KujiraFuzzTests", dependencies: ["KujiraFuzzTargets", "KujiraFormats", "KujiraModels", "KujiraTokenizer"]),
        .testTarget(name: "KujiraTests", dependencies: ["Kujira"]),
        .testTarget(name: "KujiraTrainingTests", dependencies: ["KujiraTraining", "KujiraTokenizer"]),
    ],
    swiftLanguageModes: [.v6]
)
