import Foundation
import XCTest
@testable import KujiraTokenizer

/// Hostile chat templates (one crafted template per crash class found by mutation fuzzing) fail with a
/// `ChatTemplateError` naming the problem, instead of trapping, overflowing the stack, hanging or exhausting memory.
final class ChatTemplateBudgetTests: XCTestCase {
    /// Small enough that a runaway template fails in milliseconds.
    static let small = TemplateBudget(maxSteps: 20_000, maxDepth: 64, maxOutputBytes: 256 << 10,
                                      maxStringBytes: 64 << 10, maxItems: 10_000)
    /// The default budget with 1 MiB strings (hostile values then need only 10 MB to show they are refused).
    static let medium = TemplateBudget(maxStringBytes: 1 << 20)
    /// The default steps with 256 kB of output and 64 kB strings.
    static let smallText = TemplateBudget(maxOutputBytes: 256 << 10, maxStringBytes: 64 << 10)

    private func error(_ source: String, budget: TemplateBudget = .default, context: [String: JinjaValue] = [:],
                       file: StaticString = #filePath, line: UInt = #line) -> ChatTemplateError? {
        do {
            let rendered = try ChatTemplate(source: source, budget: budget).render(context: context)
            XCTFail("rendered \(rendered.utf8.count) bytes instead of failing: \(source.prefix(80))", file: file, line: line)
        } catch let error as ChatTemplateError {
            return error
        } catch {
            XCTFail("not a ChatTemplateError: \(error)", file: file, line: line)
        }
        return nil
    }

    /// Asserts the template fails on `limit`, and that the message says which budget.
    private func assertBudget(_ limit: TemplateBudget.Limit, _ source: String, budget: TemplateBudget = .default,
                              context: [String: JinjaValue] = [:], file: StaticString = #filePath, line: UInt = #line) {
        guard let error = error(source, budget: budget, context: context, file: file, line: line) else { return }
        guard case .budgetExceeded(let got, _, _, _) = error else {
            return XCTFail("expected the \(limit) budget, got: \(error)", file: file, line: line)
        }
        XCTAssertEqual(got, limit, "\(error)", file: file, line: line)
        XCTAssertTrue(error.description.contains("exceeded its \(limit) budget"), error.description, file: file, line: line)
    }

    /// Asserts a runtime error whose message contains `text`.
    private func assertRuntime(_ source: String, _ text: String, context: [String: JinjaValue] = [:],
                               file: StaticString = #filePath, line: UInt = #line) {
        guard let error = error(source, context: context, file: file, line: line) else { return }
        guard case .runtime(let message, _, _) = error else {
            return XCTFail("expected a runtime error, got: \(error)", file: file, line: line)
        }
        XCTAssertTrue(message.contains(text), "\(source): \(message)", file: file, line: line)
    }

    private func render(_ source: String, budget: TemplateBudget = .default, context: [String: JinjaValue] = [:]) throws -> String {
        try ChatTemplate(source: source, budget: budget).render(context: context)
    }

    // MARK: - Integer arithmetic

    func testIntegerOverflowIsAnErrorNotATrap() {
        let max = "9223372036854775807", min = "(-9223372036854775807 - 1)"
        for source in ["{{ \(max) + 1 }}", "{{ \(min) - 1 }}", "{{ \(max) * 2 }}", "{{ -\(min) }}", "{{ \(min) // -1 }}",
                       "{{ \(min) % -1 }}", "{{ 2 ** 64 }}", "{{ \(min) | abs }}", "{{ [1, 2] | sum(start=\(max)) }}"] {
            assertRuntime(source, "overflow")
        }
        // Int.min % -1 traps in Swift even where the answer (0) is fine.
        XCTAssertEqual(try render("{{ \(min) is divisibleby(-1) }}"), "True")
    }

    func testDivisionAndModuloByZero() {
        for source in ["{{ 1 // 0 }}", "{{ 1 % 0 }}", "{{ 1 / 0 }}", "{{ 1.5 // 0 }}", "{{ 1.5 % 0.0 }}", "{{ 3 is divisibleby 0 }}"] {
            assertRuntime(source, "zero")
        }
    }

    func testRangeIsCheckedBeforeAllocating() throws {
        for source in ["{{ range(9223372036854775807) | length }}", "{{ range(-9223372036854775807, 9223372036854775807) | length }}",
                       "{{ range(9223372036854775807, -9223372036854775807, -1) | length }}"] {
            assertBudget(.valueSize, source)
        }
        assertBudget(.valueSize, "{{ range(10001) | length }}", budget: Self.small)
        XCTAssertEqual(try render("{{ range(10000) | length }}", budget: Self.small), "10000")
        // Huge steps cannot overflow the stride either.
        XCTAssertEqual(try render("{{ range(5, 10, 9223372036854775807) | list }}|{{ range(-5, -10, -9223372036854775807) | list }}"),
                       "[5]|[-5]")
        XCTAssertEqual(try render("{{ range(0, 10, 3) | list }}{{ range(10, 0, -4) | list }}{{ range(3, 3) | list }}"),
                       "[0, 3, 6, 9][10, 6, 2][]")
    }

    func testRepetitionIsBoundedByValueSize() {
        assertBudget(.valueSize, "{{ 'x' * 9223372036854775807 }}")
        assertBudget(.valueSize, "{{ 'xy' * 4611686018427387904 }}")  // the byte count overflows Int
        assertBudget(.valueSize, "{{ [1, 2] * 9223372036854775807 }}")
        assertBudget(.valueSize, "{{ 9223372036854775807 * 'x' }}")
        assertBudget(.valueSize, "{{ 'ab' * 40000 }}", budget: Self.small)
        assertBudget(.valueSize, "{{ [1] * 10001 }}", budget: Self.small)
    }

    // MARK: - Depth

    /// Asserts that parsing alone refuses the template on the depth budget.
    private func assertParseDepth(_ source: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ChatTemplate(source: source), file: file, line: line) { error in
            guard case .budgetExceeded(.depth, _, _, _)? = error as? ChatTemplateError else {
                return XCTFail("\(error)", file: file, line: line)
            }
        }
    }

    /// Chains are parsed by loops but evaluated (and freed) by recursion: the parser bounds their length.
    func testLongFilterChainHitsDepthBudget() {
        let chain = String(repeating: "|upper", count: 50_000)
        XCTAssertThrowsError(try ChatTemplate(source: "line 1\n{{ x\(chain) }}")) { error in
            guard case .budgetExceeded(.depth, let message, let line, _)? = error as? ChatTemplateError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(line, 2)
            XCTAssertTrue(message.contains("256"), message)
            XCTAssertTrue("\(error)".contains("exceeded its depth budget at 2:"), "\(error)")
        }
    }

    func testLongAttributeCallAndOperatorChainsHitDepthBudget() {
        for chain in ["a" + String(repeating: ".b", count: 50_000), "a" + String(repeating: "[0]", count: 50_000),
                      "f" + String(repeating: "()", count: 50_000), "1" + String(repeating: " + 1", count: 50_000),
                      "x" + String(repeating: " ~ x", count: 50_000), "x" + String(repeating: " and x", count: 50_000),
                      "x" + String(repeating: " if x", count: 50_000)] {
            assertParseDepth("{{ \(chain) }}")
        }
        assertParseDepth("{% for i in x" + String(repeating: "|list", count: 50_000) + " %}{% endfor %}")
    }

    func testDeepSourceNestingHitsDepthBudget() {
        let deep = 5_000
        for source in ["{{ " + String(repeating: "(", count: deep) + "1" + String(repeating: ")", count: deep) + " }}",
                       "{{ " + String(repeating: "[", count: deep) + String(repeating: "]", count: deep) + " }}",
                       "{{ " + String(repeating: "{'a': ", count: deep) + "1" + String(repeating: "}", count: deep) + " }}",
                       "{{ " + String(repeating: "f(", count: deep) + String(repeating: ")", count: deep) + " }}",
                       "{{ " + String(repeating: "not ", count: deep) + "x }}", "{{ " + String(repeating: "-", count: deep) + "1 }}",
                       String(repeating: "{% if x %}", count: deep) + String(repeating: "{% endif %}", count: deep),
                       String(repeating: "{% for x in y %}", count: deep) + String(repeating: "{% endfor %}", count: deep)] {
            XCTAssertThrowsError(try ChatTemplate(source: source)) { error in
                guard case .budgetExceeded(.depth, _, _, _)? = error as? ChatTemplateError else { return XCTFail("\(error)") }
            }
        }
    }

    /// Just under the limits everything still works, and the deepest recursion they allow fits the stack.
    func testTemplatesJustUnderTheDepthBudgetRender() throws {
        XCTAssertEqual(try render("{{ 'a'" + String(repeating: "|upper", count: 250) + " }}"), "A")
        XCTAssertEqual(try render("{{ 1" + String(repeating: " + 1", count: 250) + " }}"), "251")
        let list = String(repeating: "[", count: 250) + String(repeating: "]", count: 250)
        XCTAssertEqual(try render("{{ \(list) | tojson | length }}"), "500")
        XCTAssertEqual(try render("{{ " + String(repeating: "(", count: 250) + "7" + String(repeating: ")", count: 250) + " }}"), "7")
        // Macro recursion to the depth budget, each level with an expression: an error, not a stack overflow.
        assertBudget(.depth, "{% macro m(n) %}{{ m(n + 1) ~ ((((n)))) }}{% endmacro %}{{ m(0) }}")
        XCTAssertEqual(try render("{% macro m(n) %}{% if n > 0 %}{{ m(n - 1) }}{% endif %}{{ n }}{% endmacro %}{{ m(20) }}"),
                       (0...20).map(String.init).joined())
    }

    func testValueNestedByALoopHitsDepthBudget() {
        // Without a bound, tojson (and even freeing the list) would recurse 100,000 deep.
        assertBudget(.depth, """
            {% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | tojson }}
            """)
        assertBudget(.depth, """
            {% set ns = namespace(x={}) %}{% for i in range(100000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}{{ ns.x }}
            """)
        assertBudget(.depth, """
            {% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = dict(a=ns.x) | items | list %}{% endfor %}
            """)
    }

    func testValueNestedByMacroRecursionHitsDepthBudget() {
        let wrap = String(repeating: "[", count: 60) + "x" + String(repeating: "]", count: 60)
        assertBudget(.depth, "{% macro m(x, n) %}{% if n > 0 %}{{ m(\(wrap), n - 1) }}{% endif %}{% endmacro %}{{ m(1, 50) }}")
    }

    /// A namespace holding a namespace could grow a chain one link per iteration, unseen by any check.
    func testNamespacesCannotHoldNamespaces() {
        assertRuntime("""
            {% set root = namespace(next=none) %}{% set st = namespace(cur=root) %}\
            {% for i in range(100000) %}{% set c = st.cur %}{% set n = namespace(next=none) %}\
            {% set c.next = n %}{% set st.cur = n %}{% endfor %}{{ root | tojson }}
            """, "namespace cannot hold another namespace")
        assertRuntime("{% set a = namespace() %}{% set b = namespace(x=[a]) %}", "namespace cannot hold another namespace")
        assertRuntime("{% set a = namespace() %}{% set a.self = a %}", "namespace cannot hold another namespace")
    }

    /// A bound method carries its receiver: `ns.f = ns.items` in a loop nests closures unless that is counted.
    func testBoundMethodChainsAreCounted() {
        assertBudget(.depth, "{% set ns = namespace(f=1) %}{% for i in range(100000) %}{% set ns.f = ns.items %}{% endfor %}")
    }

    func testDeeplyNestedInputIsRefused() throws {
        var content: JinjaValue = "leaf"
        for _ in 0..<1_000 { content = ["content": content] }
        let messages: [JinjaValue] = [["role": "user", "content": content]]
        XCTAssertThrowsError(try ChatTemplate(source: "{{ messages | tojson }}").render(messages: messages)) { error in
            guard case .budgetExceeded(.depth, let message, _, _)? = error as? ChatTemplateError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("input"), message)
        }
        // Within the JSON parser's 512 levels but past the depth budget.
        let json = String(repeating: "[", count: 400) + String(repeating: "]", count: 400)
        XCTAssertThrowsError(try ChatTemplate(source: "{{ x }}").render(context: ["x": try JinjaValue(jsonString: json)]))
        XCTAssertThrowsError(try JinjaValue(jsonString: String(repeating: "[", count: 100_000)))
        // Swift containers too.
        var any: Any = [Any]()
        for _ in 0..<1_000 { any = [any] }
        XCTAssertThrowsError(try JinjaValue(any: any))
        // 200 levels are fine.
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        XCTAssertEqual(try render("{{ x | tojson | length }}", context: ["x": try JinjaValue(jsonString: fine)]), "400")
    }

    // MARK: - Steps, output and value sizes

    func testNestedLoopsHitStepBudget() {
        assertBudget(.steps, "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", budget: Self.small)
        assertBudget(.steps, "{% for i in range(10000) %}{% for j in range(10000) %}{{ '' }}{% endfor %}{% endfor %}",
                     budget: Self.small)
    }

    func testStringDoublingHitsValueSizeBudget() {
        assertBudget(.valueSize, """
            {% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}
            """)
        assertBudget(.valueSize, "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")
    }

    func testGrowingListsHitABudget() {
        assertBudget(.valueSize, "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")
        // Appending one item at a time copies the list each time: quadratic work, charged to the steps.
        assertBudget(.steps, "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}",
                     budget: TemplateBudget(maxSteps: 50_000))
    }

    func testOutputBudget() {
        assertBudget(.output, "{% for i in range(10000) %}{{ '0123456789' * 3 }}{% endfor %}", budget: Self.smallText)
        assertBudget(.output, "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")
    }

    func testCapturedTextIsBoundedWhileBuilt() {
        assertBudget(.valueSize, "{% set s %}{% for i in range(10000) %}0123456789{% endfor %}{% endset %}", budget: Self.smallText)
        assertBudget(.valueSize, "{% macro m() %}{% for i in range(10000) %}0123456789{% endfor %}{% endmacro %}{{ m() | length }}",
                     budget: Self.smallText)
        assertBudget(.valueSize, "{% filter upper %}{% for i in range(10000) %}0123456789{% endfor %}{% endfilter %}",
                     budget: Self.smallText)
        // The output budget (256 kB here) is not the value budget (64 kB): 100 kB of text output directly is fine.
        XCTAssertEqual(try render("{% for i in range(10000) %}0123456789{% endfor %}", budget: Self.smallText).utf8.count, 100_000)
    }

    /// A list of one shared 100 kB string costs nothing to build, but printing or joining it would (100 MB).
    func testTextOfSharedValuesIsBounded() {
        let shared = "{% set big = ['x' * 100000] * 1000 %}"
        for use in ["{{ big }}", "{{ big | join }}", "{{ big | tojson }}", "{{ big | string | length }}", "{{ '%s' % [big] }}",
                    "{{ '{}'.format(big) }}", "{{ ''.join(big) }}", "{{ big | map('upper') | list | length }}",
                    "{{ big | tojson(indent='x' * 100000) }}", "{{ ([1] * 1000) | tojson(indent='x' * 100000) }}"] {
            guard let error = error(shared + use, budget: Self.medium) else { continue }
            guard case .budgetExceeded(let limit, _, _, _) = error, limit == .valueSize || limit == .steps else {
                XCTFail("\(use): \(error)")
                continue
            }
        }
    }

    func testReplaceSplitIndentAndFormatAreBounded() {
        assertBudget(.valueSize, "{{ ('a' * 100000) | replace('a', 'b' * 1000) }}", budget: Self.medium)
        assertBudget(.valueSize, "{{ ('a' * 100000).replace('', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') }}", budget: Self.medium)
        assertBudget(.valueSize, "{{ (',' * 60000).split(',') | length }}", budget: Self.small)
        assertBudget(.valueSize, "{{ ('\\n' * 60000).splitlines() | length }}", budget: Self.small)
        assertBudget(.valueSize, "{{ ('\\n' * 100000) | indent('x' * 1000) }}", budget: Self.medium)
        assertBudget(.valueSize, "{{ ('%s' * 10000) % ([('x' * 1000)] * 10000) }}", budget: Self.medium)
        assertBudget(.valueSize, "{{ ('{0}' * 10000).format('x' * 1000) }}", budget: Self.medium)
        assertBudget(.valueSize, "{{ ('a' * 60000) | list | length }}", budget: Self.small)
    }

    /// Work that is quadratic in a value's size is charged as it happens.
    func testQuadraticWorkIsCharged() {
        assertBudget(.steps, "{{ range(10000) | unique | list | length }}", budget: Self.small)
        assertBudget(.steps, "{% set a = range(1000) | list %}{% for i in range(2000) %}{% if a == a %}{% endif %}{% endfor %}",
                     budget: Self.small)
        assertBudget(.steps, "{% set s = 'a' * 60000 %}{% for i in range(10000) %}{% if 'b' in s %}{% endif %}{% endfor %}",
                     budget: Self.small)
        assertBudget(.steps, "{% set s = 'a' * 60000 %}{% for i in range(10000) %}{{ s | trim | length }}{% endfor %}",
                     budget: Self.small)
        assertBudget(.steps, "{% set s = 'a' * 60000 %}{% for i in range(10000) %}{{ s[i] }}{% endfor %}", budget: Self.small)
    }

    /// The linear-time search behind `in`, find, count, split and replace keeps Python's answers.
    func testStringSearchKeepsPythonSemantics() throws {
        XCTAssertEqual(try render("""
            {{ 'aaaa'.count('aa') }} {{ 'aaaa'.rfind('aa') }} {{ 'abcabc'.find('ca') }} {{ 'abc'.find('') }} \
            {{ 'abc'.rfind('') }} {{ 'abc'.count('') }} {{ 'xyz'.find('q') }} {{ 'aab' in 'aaab' }} {{ '' in 'a' }}
            """), "2 2 2 0 3 4 -1 True True")
        XCTAssertEqual(try render("""
            {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'aaa'.split('aa') }} \
            {{ 'aaa'.rsplit('aa') }} {{ ' a  b '.split() }} {{ 'a b c'.rsplit(None, 1) }}
            """), "['a', 'b', '', 'c'] ['a', 'b,c'] ['a,b', 'c'] ['', 'a'] ['a', ''] ['a', 'b'] ['a b', 'c']")
        XCTAssertEqual(try render("""
            {{ 'aaa'.replace('a', 'bb') }} {{ 'aaa'.replace('aa', 'b') }} {{ 'abc'.replace('', '-') }} \
            {{ 'abab'.replace('ab', 'x', 1) }} {{ 'ab' | replace('', '.', 2) }} {{ 'héllo wörld' | replace('ö', 'o') }}
            """), "bbbbbb ba -a-b-c- xab .a.b héllo world")
    }

    func testExtremeIndicesAndFloatConversions() throws {
        let min = "(-9223372036854775807 - 1)", max = "9223372036854775807"
        XCTAssertEqual(try render("""
            [{{ 'abc'[\(min)] }}{{ 'abc'[\(max)] }}{{ [1][\(min)] }}] {{ 'abc'[\(max):] }}|{{ 'abc'[\(min):\(max)] }}|\
            {{ 'abc'[::\(min)] }}|{{ 'abc'[1::\(max)] }}|{{ [1, 2, 3][\(max)::-1] }}|{{ [1, 2, 3][:\(min):-1] }}
            """), "[] |abc|c|b|[3, 2, 1]|[3, 2, 1]")
        XCTAssertEqual(try render("""
            {{ 1e300 | int }} {{ 'nan' | float | int }} {{ '-inf' | float | int }} {{ '1e400' | int }} {{ 1e300 | round(-400) }} \
            {{ 2.5 | round(400) }}
            """), "0 0 0 0 0.0 2.5")
        for source in ["{{ 'x' | indent(1e300) }}", "{{ [1] | batch(1e300) }}", "{{ '%d' % (0.0 / 1) ~ ('%d' % 1e300) }}",
                       "{{ range(1e300) }}", "{{ '{-1}'.format(1) }}", "{{ '{99999999999999999999}'.format(1) }}"] {
            XCTAssertThrowsError(try render(source), source)
        }
        XCTAssertEqual(try render("{{ 'a,b'.split(',', 1e300) }} {{ 'aaa' | replace('a', 'b', 1e300) }}"), "['a', 'b'] bbb")
    }

    // MARK: - Error messages

    func testErrorMessagesQuoteAtMostAShortEscapedSnippet() {
        let hostile = "\u{1B}[2J\u{202E}" + String(repeating: "A", count: 100_000)
        let name = "evil" + String(repeating: "x", count: 100_000)
        let sources = ["{{ x | \(name) }}", "{{ x is \(name) }}", "{% \(name) %}", "{{ \(name).y }}", "{{ \(name)() }}",
                       "{{ a \u{1B} }}", "{{ 1\(String(repeating: "0", count: 100_000)) }}", "{{ d[k].y }}", "{{ [1][k].y }}",
                       "{{ raise_exception(k) }}", "{{ ('{' ~ k ~ '}').format() }}", "{{ [k].index(k ~ 'z') }}"]
        for source in sources {
            let error: Error
            do {
                _ = try ChatTemplate(source: source).render(context: ["k": .string(hostile), "d": [:]])
                XCTFail("rendered: \(source.prefix(40))")
                continue
            } catch let caught {
                error = caught
            }
            let text = "\(error)"
            XCTAssertLessThan(text.count, 700, String(text.prefix(200)))
            XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{202E}" }, String(text.prefix(200)))
        }
        XCTAssertThrowsError(try JinjaValue(jsonString: "[1e1e1e" + String(repeating: "1", count: 100_000) + "]")) {
            XCTAssertLessThan("\($0)".count, 300)
        }
    }

    // MARK: - Real templates

    /// The goldens render byte-for-byte within a budget 100x below the default steps and 8x below its depth.
    func testRealTemplatesUseAFractionOfTheBudget() throws {
        let tight = TemplateBudget(maxSteps: 10_000, maxDepth: 32, maxOutputBytes: 64 << 10, maxStringBytes: 64 << 10,
                                   maxItems: 1_000)
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/chat-templates")
        for model in ["deepseek-r1-distill-qwen", "deepseek-v3", "qwen2.5-instruct", "qwen3", "smollm2-gguf"] {
            let template = try ChatTemplate.load(path: fixtures.appendingPathComponent("\(model)/template.jinja").path,
                                                 budget: tight)
            guard case .object(let golden) = try JinjaValue(json: Data(contentsOf: fixtures.appendingPathComponent("\(model)/golden.json"))),
                  case .array(let cases)? = golden["cases"]
            else { return XCTFail("\(model): malformed golden") }
            for case .object(let testCase) in cases {
                guard case .array(let messages)? = testCase["messages"], case .string(let expected)? = testCase["rendered"] else { continue }
                var tools: [JinjaValue]?
                if case .array(let list)? = testCase["tools"] { tools = list }
                var extra: [String: JinjaValue] = [:]
                if case .object(let variables)? = testCase["extra"] { for (key, value) in variables.pairs { extra[key] = value } }
                var bos = "", eos = ""
                if case .string(let s)? = golden["bos_token"] { bos = s }
                if case .string(let s)? = golden["eos_token"] { eos = s }
                XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: testCase["add_generation_prompt"] == .bool(true),
                                                   tools: tools, bosToken: bos, eosToken: eos, extra: extra), expected, model)
            }
        }
    }
}
