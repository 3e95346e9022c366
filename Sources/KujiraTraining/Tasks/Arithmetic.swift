/// Synthetic, verifiable arithmetic in DeepSeek-R1 format: a question, a step-by-step scratchpad inside
/// `<think>…</think>`, then the answer. Difficulty is the digit count of the operands (the curriculum knob).
public enum ArithmeticOperation: String, Sendable, Codable, CaseIterable {
    case addition = "+", subtraction = "-", multiplication = "*"
}

/// One problem: `a op b` with its scratchpad and answer.
public struct ArithmeticProblem: Sendable, Equatable {
    public let a: Int, b: Int
    public let operation: ArithmeticOperation

    public init(a: Int, b: Int, operation: ArithmeticOperation) { self.a = a; self.b = b; self.operation = operation }

    /// The question text, e.g. "345+678".
    public var question: String { "\(a)\(operation.rawValue)\(b)" }

    public var answer: String {
        switch operation {
        case .addition: return String(a + b)
        case .subtraction: return String(a - b)
        case .multiplication: return String(a * b)
        }
    }

    /// Column-wise steps, least significant digit first.
    /// Addition: one line per column "x+y+carry=s" (s ≥ 10 carries 1). Subtraction (a ≥ b): "x-y-borrow=d", with
    /// the borrowed 10 written into x ("13-8-0=5") when the column borrows. Multiplication: one partial product
    /// per digit of b ("678*40=27120"), then their sum.
    public var scratchpad: String {
        let da = digits(a), db = digits(b)
        var lines: [String] = []
        switch operation {
        case .addition:
            var carry = 0
            for i in 0..<max(da.count, db.count) {
                let x = i < da.count ? da[i] : 0, y = i < db.count ? db[i] : 0
                let s = x + y + carry
                lines.append("\(x)+\(y)+\(carry)=\(s)")
                carry = s / 10
            }
        case .subtraction:
            var borrow = 0
            for i in 0..<da.count {
                let x = da[i], y = i < db.count ? db[i] : 0
                let d = x - y - borrow
                if d < 0 { lines.append("1\(x)-\(y)-\(borrow)=\(d + 10)"); borrow = 1 } else { lines.append("\(x)-\(y)-\(borrow)=\(d)"); borrow = 0 }
            }
        case .multiplication:
            var partials: [Int] = []
            var place = 1
            for d in db {
                partials.append(a * d * place)
                lines.append("\(a)*\(d * place)=\(a * d * place)")
                place *= 10
            }
            if partials.count > 1 { lines.append(partials.map(String.init).joined(separator: "+") + "=\(a * b)") }
        }
        return lines.joined(separator: "\n")
    }

    /// The ways a user may ask: the bare problem, "What is …?" and "what is …?".
    public var questionPhrasings: [String] { [question, "What is \(question)?", "what is \(question)?"] }

    /// The assistant's full reply: `<think>\n{scratchpad}\n</think>\n\n{answer}`.
    public var reply: String { "<think>\n\(scratchpad)\n</think>\n\n\(answer)" }

    private func digits(_ n: Int) -> [Int] {
        var n = n, out: [Int] = []
        repeat { out.append(n % 10); n /= 10 } while n > 0
        return out
    }

    /// A stable hash of the problem (FNV-1a of its question; Swift's `Hasher` is seeded per process).
    public var stableHash: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in question.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }

    /// Held-out problems (about 1 in `heldOutModulus`) are never used for training.
    public var isHeldOut: Bool { stableHash % ArithmeticTask.heldOutModulus == 0 }

    /// Exact match: the text after the last `</think>` (whitespace trimmed) equals the answer.
    public func isCorrect(_ completion: String) -> Bool {
        guard let range = completion.range(of: "</think>", options: .backwards) else { return false }
        var tail = completion[range.upperBound...]
        if let end = tail.range(of: CharacterTokenizer.endOfSentence) { tail = tail[..<end.lowerBound] }
        return tail.trimmingCharacters(in: .whitespacesAndNewlines) == answer
    }
}

/// Problem generator: operations, digit counts, and the train / held-out split by problem hash.
public struct ArithmeticTask: Sendable, Codable, Equatable {
    public static let heldOutModulus: UInt64 = 10
    public var operations: [ArithmeticOperation]
    /// Operand digit counts to draw from (uniformly).
    public var digits: ClosedRange<Int>
    /// When true, training prompts are phrased at random from `ArithmeticProblem.questionPhrasings`
    /// (optional so that older checkpoints' settings still decode).
    public var naturalQuestions: Bool?
    /// When true, the two operands' digit counts are drawn independently (optional for older checkpoints).
    public var mixedLengths: Bool?

    public init(operations: [ArithmeticOperation] = [.addition], digits: ClosedRange<Int> = 3...3, naturalQuestions: Bool = false,
                mixedLengths: Bool = false) {
        self.operations = operations
        self.digits = digits
        self.naturalQuestions = naturalQuestions ? true : nil
        self.mixedLengths = mixedLengths ? true : nil
    }

    /// A random problem from the training split (held-out problems are rejected) or, with `heldOut`, from the held-out split.
    public func sample(_ rng: inout TrainingRandom, heldOut: Bool = false) -> ArithmeticProblem {
        while true {
            let operation = operations[rng.below(operations.count)]
            let n = digits.lowerBound + rng.below(digits.count)
            // With mixedLengths the second operand gets its own digit count (e.g. 123+45).
            let m = mixedLengths == true ? digits.lowerBound + rng.below(digits.count) : n
            var a = number(digits: n, &rng), b = number(digits: m, &rng)
            if operation == .subtraction && a < b { swap(&a, &b) }
            let problem = ArithmeticProblem(a: a, b: b, operation: operation)
            if problem.isHeldOut == heldOut { return problem }
        }
    }

    /// The first `count` held-out problems drawn from a fixed seed (the same evaluation set every time).
    public func heldOutSet(count: Int, seed: UInt64 = 0x5EED) -> [ArithmeticProblem] {
        var rng = TrainingRandom(seed: seed)
        return (0..<count).map { _ in sample(&rng, heldOut: true) }
    }

    private func number(digits n: Int, _ rng: inout TrainingRandom) -> Int {
        let low = n == 1 ? 0 : pow10(n - 1), high = pow10(n)
        return low + rng.below(high - low)
    }

    private func pow10(_ n: Int) -> Int { (0..<n).reduce(1) { r, _ in r * 10 } }
}
