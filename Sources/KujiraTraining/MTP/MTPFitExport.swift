import Foundation
import KujiraFormats

/// What `kujira train-mtp` writes beside the model (`mtp_fit.json`): the settings, the data and the fit.
public struct MTPFitReport: Sendable, Codable, Equatable {
    public var settings: MTPFitSettings
    public var trainSequences: Int
    public var heldOutSequences: Int
    /// Continuation tokens the module is scored on (training, held out).
    public var trainTokens: Int
    public var heldOutTokens: Int
    public var steps: Int
    /// The module's top-1 accuracy and loss before and after fitting.
    public var trainBefore: MTPFitScore?
    public var trainAfter: MTPFitScore?
    public var heldOutBefore: MTPFitScore?
    public var heldOutAfter: MTPFitScore?
    public var losses: [Double]
    public var generationSeconds: Double
    public var trainingSeconds: Double

    public init(settings: MTPFitSettings, trainSequences: Int, heldOutSequences: Int, trainTokens: Int, heldOutTokens: Int, steps: Int,
                trainBefore: MTPFitScore?, trainAfter: MTPFitScore?, heldOutBefore: MTPFitScore?, heldOutAfter: MTPFitScore?,
                losses: [Double], generationSeconds: Double, trainingSeconds: Double) {
        self.settings = settings; self.trainSequences = trainSequences; self.heldOutSequences = heldOutSequences
        self.trainTokens = trainTokens; self.heldOutTokens = heldOutTokens; self.steps = steps
        self.trainBefore = trainBefore; self.trainAfter = trainAfter; self.heldOutBefore = heldOutBefore; self.heldOutAfter = heldOutAfter
        self.losses = losses; self.generationSeconds = generationSeconds; self.trainingSeconds = trainingSeconds
    }
}

extension MTPFitter {
    /// File of the fitted module's tensors (float32) in the output directory.
    public static let moduleFile = "model-mtp.safetensors"
    /// The report's file name.
    public static let reportFile = "mtp_fit.json"

    /// Writes the model with its fitted module as a new directory `out`, published whole by one rename (a crash leaves
    /// no partial `out`): config.json with `num_nextn_predict_layers` = 1, the model's weight files hard-linked (copied
    /// across file systems), the module in `model-mtp.safetensors`, a `model.safetensors.index.json` mapping every
    /// tensor to its file (a weight file that held a stored module is rewritten without it), the model's other files (tokenizer, chat template) copied, and `mtp_fit.json`.
    /// Refuses an `out` that exists.
    public func write(to target: String, report: MTPFitReport) throws {
        let fm = FileManager.default, out = URL(fileURLWithPath: target).standardizedFileURL.path
        guard !fm.fileExists(atPath: out) else { throw TrainingError.invalidInput("\(out) exists; train-mtp writes a new directory (choose another --out)") }
        let weightMap = try originalWeightMap()
        let temporary = try AtomicFile.prepareDirectory(for: out) { dir in
            func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
            try AtomicFile.write(JSONValue.object(config.values).serialized(), to: path("config.json"))
            let replaced = Set(weightMap.keys.filter { Self.isReplaced($0, prefix: prefix) })
            var map = weightMap.filter { !replaced.contains($0.key) }.mapValues { JSONValue.string($0) }
            for file in Set(weightMap.values).sorted() {
                let from = (directory as NSString).appendingPathComponent(file)
                let dropped = replaced.filter { weightMap[$0] == file }
                if !dropped.isEmpty {
                    try copyWeights(from, to: path(file), dropping: dropped)
                } else {
                    do { try fm.linkItem(atPath: from, toPath: path(file)) } catch { try fm.copyItem(atPath: from, toPath: path(file)) }
                }
            }
            try SafeTensorsWriter.write(parameters.tensors(gradients: false), metadata: ["format": "pt"], to: path(Self.moduleFile))
            for e in parameters.entries { map[e.name] = .string(Self.moduleFile) }
            let index = JSONValue.object(["metadata": .object([:]), "weight_map": .object(map)])
            try AtomicFile.write(index.serialized(), to: path("model.safetensors.index.json"))
            let skipped = Set(weightMap.values).union(["config.json", "model.safetensors.index.json", Self.reportFile])
            for name in try fm.contentsOfDirectory(atPath: directory).sorted() where !skipped.contains(name) && !name.hasPrefix(".") {
                var isDirectory: ObjCBool = false
                let from = (directory as NSString).appendingPathComponent(name)
                guard fm.fileExists(atPath: from, isDirectory: &isDirectory), !isDirectory.boolValue, !name.hasSuffix(".safetensors") else { continue }
                try fm.copyItem(atPath: from, toPath: path(name))
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try AtomicFile.write(try encoder.encode(report), to: path(Self.reportFile))
        }
        do {
            try AtomicFile.rename(temporary, to: out)
            try AtomicFile.sync((out as NSString).deletingLastPathComponent)
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Writes safetensors file `from` to `to` without the `dropped` tensors (the stored module the fit replaces), each
    /// other tensor's bytes unchanged.
    func copyWeights(_ from: String, to: String, dropping dropped: Set<String>) throws {
        let file = try SafeTensorsFile(path: from)
        var entries: [SafeTensorsStreamWriter.Entry] = []
        for name in file.tensorNames where !dropped.contains(name) {
            let t = try file.tensor(name)
            entries.append(.init(name: name, dtype: t.dtype, shape: t.shape))
        }
        let writer = try SafeTensorsStreamWriter(path: to, entries: entries, metadata: file.metadata)
        while let next = writer.nextEntry { try writer.append(Array(try file.tensor(next.name).bytes)) }
        try writer.finish()
    }

    /// Tensor → weight file (name in the model directory), as `SafeTensorsStore` resolves the directory (its index,
    /// `model.safetensors`, or every `*.safetensors`).
    func originalWeightMap() throws -> [String: String] {
        let store = try SafeTensorsStore(directory: directory)
        var map: [String: String] = [:]
        for name in store.tensorNames { map[name] = store.file(of: name).map { ($0 as NSString).lastPathComponent } }
        return map
    }
}
