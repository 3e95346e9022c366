import Foundation
import KujiraFormats

/// `report.svg` / `report.html`: loss, held-out accuracy and expert-load (max/mean) curves of a run.
public enum TrainingReport {
    /// One panel: a polyline of (step, value) scaled into a 300×180 box at (x, y).
    static func panel(title: String, points: [(Int, Double)], x: Int, y: Int, fixedRange: ClosedRange<Double>? = nil, color: String) -> String {
        let width = 300.0, height = 180.0
        var svg = "<g transform=\"translate(\(x),\(y))\"><rect width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fafafa\" stroke=\"#ccc\"/>"
        svg += "<text x=\"6\" y=\"16\" font-size=\"13\" font-family=\"sans-serif\">\(title)</text>"
        guard let first = points.first else { return svg + "<text x=\"100\" y=\"95\" font-size=\"12\">no data</text></g>" }
        let steps = points.map { Double($0.0) }, values = points.map(\.1).filter(\.isFinite)
        let x0 = steps.min() ?? 0, x1 = max((steps.max() ?? 1), x0 + 1)
        let lo = fixedRange?.lowerBound ?? (values.min() ?? 0), hi = max(fixedRange?.upperBound ?? (values.max() ?? 1), lo + 1e-9)
        let coordinates = points.filter { $0.1.isFinite }.map { p -> String in
            let px = 10 + (Double(p.0) - x0) / (x1 - x0) * (width - 20)
            let py = height - 10 - (p.1 - lo) / (hi - lo) * (height - 40)
            return String(format: "%.1f,%.1f", px, py)
        }
        svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(coordinates.joined(separator: " "))\"/>"
        svg += String(format: "<text x=\"6\" y=\"32\" font-size=\"10\" fill=\"#666\">%.4g … %.4g (steps %d–%d)</text>", lo, hi, first.0, points.last?.0 ?? first.0)
        return svg + "</g>"
    }

    public static func svg(_ history: [StepRecord]) -> String {
        let loss = history.map { ($0.step, $0.mainLoss) }
        let accuracy = history.compactMap { r in r.accuracy.map { (r.step, $0) } }
        let load = history.map { ($0.step, $0.loadMaxOverMean) }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"200\">"
            + panel(title: "training loss (main CE)", points: loss, x: 10, y: 10, color: "#1f77b4")
            + panel(title: "held-out exact match", points: accuracy, x: 325, y: 10, fixedRange: 0...1, color: "#2ca02c")
            + panel(title: "expert load max/mean", points: load, x: 640, y: 10, color: "#d62728")
            + "</svg>\n"
    }

    public static func html(_ history: [StepRecord], settings: TrainingSettings) -> String {
        let last = history.last
        let bestAccuracy = history.compactMap(\.accuracy).max()
        var rows = ""
        for r in history where r.accuracy != nil {
            rows += String(format: "<tr><td>%d</td><td>%.4f</td><td>%.1f%%</td><td>%.2f</td></tr>", r.step, r.mainLoss, (r.accuracy ?? 0) * 100, r.loadMaxOverMean)
        }
        return """
        <!doctype html><html><head><meta charset="utf-8"><title>Kujira training report</title></head>
        <body style="font-family:sans-serif"><h1>Kujira training report</h1>
        <p>steps \(history.count) / \(settings.steps), batch \(settings.batch) × \(settings.length), seed \(settings.seed),
        final loss \(last.map { String(format: "%.4f", $0.mainLoss) } ?? "–"), best held-out exact match \(bestAccuracy.map { String(format: "%.1f%%", $0 * 100) } ?? "–")</p>
        \(svg(history))
        <table border="1" cellpadding="3"><tr><th>step</th><th>loss</th><th>exact match</th><th>load max/mean</th></tr>\(rows)</table>
        </body></html>

        """
    }

    /// Writes report.svg and report.html into `directory` (atomically).
    public static func write(_ trainer: Trainer, to directory: String) throws {
        try AtomicFile.write(Data(svg(trainer.history).utf8), to: (directory as NSString).appendingPathComponent("report.svg"))
        try AtomicFile.write(Data(html(trainer.history, settings: trainer.settings).utf8), to: (directory as NSString).appendingPathComponent("report.html"))
    }
}

/// `report.svg` / `report.html` of a fine-tuning run: training loss, eval loss and learning-rate curves.
public enum FineTuningReport {
    public static func svg(_ history: [SFTRecord]) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"200\">"
            + TrainingReport.panel(title: "training loss (reply tokens)", points: history.map { ($0.step, $0.loss) }, x: 10, y: 10, color: "#1f77b4")
            + TrainingReport.panel(title: "eval loss", points: history.compactMap { r in r.evalLoss.map { (r.step, $0) } }, x: 325, y: 10, color: "#2ca02c")
            + TrainingReport.panel(title: "learning rate", points: history.map { ($0.step, Double($0.learningRate)) }, x: 640, y: 10, color: "#d62728")
            + "</svg>\n"
    }

    public static func html(_ history: [SFTRecord], title: String) -> String {
        var rows = ""
        for r in history where r.evalLoss != nil {
            rows += String(format: "<tr><td>%d</td><td>%.4f</td><td>%.4f</td><td>%.2e</td><td>%.0f</td></tr>", r.step, r.loss, r.evalLoss ?? 0,
                           r.learningRate, r.tokensPerSecond)
        }
        let last = history.last.map { String(format: "%.4f", $0.loss) } ?? "–"
        return """
        <!doctype html><html><head><meta charset="utf-8"><title>\(title)</title></head>
        <body style="font-family:sans-serif"><h1>\(title)</h1>
        <p>steps \(history.count), final training loss \(last)</p>
        \(svg(history))
        <table border="1" cellpadding="3"><tr><th>step</th><th>loss</th><th>eval loss</th><th>lr</th><th>tokens/s</th></tr>\(rows)</table>
        </body></html>

        """
    }

    /// Writes report.svg and report.html into `directory` (atomically).
    public static func write(_ history: [SFTRecord], title: String, to directory: String) throws {
        try AtomicFile.write(Data(svg(history).utf8), to: (directory as NSString).appendingPathComponent("report.svg"))
        try AtomicFile.write(Data(html(history, title: title).utf8), to: (directory as NSString).appendingPathComponent("report.html"))
    }
}
