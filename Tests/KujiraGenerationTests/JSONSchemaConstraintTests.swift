import Foundation
@testable import KujiraGeneration
import XCTest

/// `JSONSchema` + `JSONSchemaValidator` (constrained decoding for `response_format: json_schema`): what they accept and
/// refuse byte by byte, that no state is a dead end (random walks always find a next byte and finish), and that every
/// finished walk is valid for an independent validator (Python's `jsonschema`).
final class JSONSchemaConstraintTests: XCTestCase {
    /// Nested objects, arrays with bounds, enums, required and optional fields, numbers and integers, nullable through
    /// `anyOf` and a `$ref` into `$defs` — what pydantic writes for a model with a nested model and an Optional.
    static let person = """
    {"type": "object", "additionalProperties": false,
     "properties": {
       "name": {"type": "string"},
       "age": {"type": "integer"},
       "height": {"type": "number"},
       "role": {"enum": ["admin", "user", "guest"]},
       "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
       "address": {"$ref": "#/$defs/Address"},
       "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
       "active": {"type": "boolean"}
     },
     "required": ["name", "age", "role", "tags", "address"],
     "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "integer"},
                                                            "lines": {"type": "array", "items": {"type": "string"}}},
                           "required": ["city"], "additionalProperties": false}}}
    """

    /// A recursive tree, an array of objects, a const and a free-form object.
    static let tree = """
    {"type": "object", "properties": {
       "kind": {"const": "tree"},
       "root": {"$ref": "#/$defs/Node"},
       "meta": {"type": "object"},
       "scores": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "number"}},
                                             "required": ["k", "v"], "additionalProperties": false}, "maxItems": 2}
     }, "required": ["kind", "root"], "additionalProperties": false,
     "$defs": {"Node": {"type": "object", "properties": {"label": {"type": "string"},
                                                         "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "maxItems": 2}},
                        "required": ["label"], "additionalProperties": false}}}
    """

    func validator(_ schema: String) throws -> JSONSchemaValidator {
        JSONSchemaValidator(schema: try JSONSchema(json: schema))
    }

    func accepts(_ schema: String, _ text: String) throws -> (Bool, Bool) {
        var v = try validator(schema)
        return (v.accept(Array(text.utf8)), v.isComplete)
    }

    func testValidDocumentsAreAcceptedAndComplete() throws {
        let documents = [
            #"{"name": "Ada", "age": 36, "role": "admin", "tags": ["x"], "address": {"city": "London"}}"#,
            #"{"address":{"zip":12345,"city":"Paris","lines":[]},"tags":["a","b","c"],"role":"guest","age":-1,"name":"","nickname":null}"#,
            #"{"name": "B\u00e9a \"Q\"", "age": 0, "height": 1.75e2, "role": "user", "tags": ["t"], "address": {"city": "X"}, "nickname": "bee", "active": false}"#,
        ]
        for text in documents {
            let (ok, complete) = try accepts(Self.person, text)
            XCTAssertTrue(ok && complete, text)
        }
        let trees = [#"{"kind":"tree","root":{"label":"a","children":[{"label":"b"},{"label":"c","children":[]}]},"meta":{"any":[1,{"x":null}]}}"#,
                     #"{"root": {"label": "r"}, "kind": "tree", "scores": [{"k": "a", "v": 1}, {"v": 2.5, "k": "b"}]}"#]
        for text in trees {
            let (ok, complete) = try accepts(Self.tree, text)
            XCTAssertTrue(ok && complete, text)
        }
    }

    /// Each invalid document is refused at the byte where it goes wrong (the prefix before it is accepted).
    func testInvalidDocumentsAreRefusedWhereTheyGoWrong() throws {
        let cases: [(String, String)] = [
            (#"{"name": "A", "age": 1, "role": "user", "tags": ["x"]"#, "}"),                  // address is required
            (#"{"name": "A", "#, #""x"#),                                                      // no such key (additionalProperties false)
            (#"{"name": "A", "n"#, #"ame""#),                                                 // a key twice
            (#"{"age": 1"#, "."),                                                              // integer
            (#"{"age": "#, #"""#),                                                             // wrong type
            (#"{"role": "ad"#, "x"),                                                           // enum
            (#"{"tags": ["#, "]"),                                                             // minItems 1
            (#"{"tags": ["a", "b", "c""#, ","),                                                // maxItems 3
            (#"{"address": {"city": "C", "zip": 1"#, "e"),                                     // integer, no exponent
            (#"{"active": "#, "1"),                                                            // boolean
            (#"{"nickname": "#, "1"),                                                          // string or null only
        ]
        for (prefix, bad) in cases {
            var v = try validator(Self.person)
            XCTAssertTrue(v.accept(Array(prefix.utf8)), "prefix \(prefix)")
            XCTAssertFalse(v.allows(Array(bad.utf8)), "\(prefix) + \(bad)")
        }
        var v = try validator(Self.person)
        XCTAssertTrue(v.accept(Array(#"{"name": "a" , "#.utf8)))
        XCTAssertFalse(v.allows(Array("}".utf8)), "a trailing comma")
        var tree = try validator(Self.tree)
        XCTAssertTrue(tree.accept(Array(#"{"kind": "#.utf8)))
        XCTAssertFalse(tree.allows(Array(#""forest""#.utf8)), "const")
        XCTAssertTrue(tree.allows(Array(#""tree""#.utf8)))
    }

    func testUnsupportedAndInvalidSchemasAreNamed() {
        XCTAssertThrowsError(try JSONSchema(json: #"{"type": "string", "pattern": "^a"}"#)) { error in
            XCTAssertEqual(error as? JSONSchemaError, .unsupported(path: "#", keyword: "pattern"))
        }
        XCTAssertThrowsError(try JSONSchema(json: #"{"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}"#)) { error in
            XCTAssertEqual(error as? JSONSchemaError, .unsupported(path: "#/properties/n", keyword: "minimum"))
        }
        XCTAssertThrowsError(try JSONSchema(json: #"{"type": "object", "properties": {}, "required": ["x"]}"#)) { error in
            XCTAssertEqual((error as? JSONSchemaError)?.description, "#/required: 'x' is required but not in 'properties'")
        }
        XCTAssertThrowsError(try JSONSchema(json: #"{"anyOf": [{"type": "object"}, {"type": "object", "properties": {"a": {}}}]}"#))
        XCTAssertThrowsError(try JSONSchema(json: ##"{"$ref": "#/$defs/Missing"}"##))
        XCTAssertThrowsError(try JSONSchema(json: #"{"type": "integer" "#))
    }

    /// Random walks over the allowed bytes never get stuck, and every walk that finishes is a valid document for
    /// Python's `jsonschema` (an independent validator), as well as for `JSONSerialization`.
    func testRandomWalksNeverDeadEndAndValidate() throws {
        var rng = SystemRandomNumberGenerator()
        var finished: [String: [String]] = [:]
        for (name, schema) in [("person", Self.person), ("tree", Self.tree)] {
            for walk in 0..<120 {
                var v = try validator(schema)
                var text: [UInt8] = []
                // Closers get more weight as the walk grows, so most walks finish.
                // Printable ASCII, a newline, UTF-8 sequences ("é", "日") and stray UTF-8 bytes the validator must refuse.
                let printable = (UInt8(0x20)...UInt8(0x7E)).map { [$0] } + [[0x0A], [0xC3, 0xA9], [0xE6, 0x97, 0xA5], [0x80], [0xC3], [0xFF]]
                let words = ["true", "false", "null", "\"admin\"", "\"tree\"", "\"user\""]
                var steps = 0
                while !v.isComplete && steps < 4000 {
                    steps += 1
                    var options: [[UInt8]] = printable + words.map { Array($0.utf8) }
                    for key in ["\"name\"", "\"age\"", "\"role\"", "\"tags\"", "\"address\"", "\"city\"", "\"kind\"", "\"root\"", "\"label\"",
                                "\"children\"", "\"k\"", "\"v\"", "\"scores\"", "\"meta\""] { options.append(Array(key.utf8)) }
                    let allowed = options.filter { v.allows($0) }
                    XCTAssertFalse(allowed.isEmpty, "\(name) walk \(walk): dead end after \(String(decoding: text, as: UTF8.self))")
                    if allowed.isEmpty { break }
                    let closers = allowed.filter { $0.count == 1 && "}]\"".utf8.contains($0[0]) }
                    let pick = (!closers.isEmpty && Int.random(in: 0..<100, using: &rng) < min(90, 20 + steps / 4)) ? closers.randomElement(using: &rng)!
                        : allowed.randomElement(using: &rng)!
                    XCTAssertTrue(v.accept(pick))
                    text += pick
                }
                guard v.isComplete else { continue }
                XCTAssertNotNil(String(bytes: text, encoding: .utf8), "\(name) walk \(walk): not valid UTF-8")
                let string = String(decoding: text, as: UTF8.self)
                XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed]), string)
                finished[name, default: []].append(string)
            }
            XCTAssertGreaterThan(finished[name]?.count ?? 0, 60, "\(name): most walks finish")
        }
        try validateWithPython(["person": Self.person, "tree": Self.tree], finished)
    }

    /// Runs Python's `jsonschema` (Draft 2020-12) over the documents; skips when Python or the package is missing.
    func validateWithPython(_ schemas: [String: String], _ documents: [String: [String]]) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let payload: [String: Any] = ["schemas": schemas, "documents": documents]
        let input = directory.appendingPathComponent("input.json")
        try JSONSerialization.data(withJSONObject: payload).write(to: input)
        let script = """
        import json, sys
        try:
            import jsonschema
        except ImportError:
            print("SKIP no jsonschema"); sys.exit(0)
        data = json.load(open(sys.argv[1]))
        bad = 0
        for name, schema in data["schemas"].items():
            validator = jsonschema.Draft202012Validator(json.loads(schema))
            for text in data["documents"].get(name, []):
                errors = list(validator.iter_errors(json.loads(text)))
                if errors:
                    bad += 1; print("INVALID", name, text, errors[0].message)
        print("checked", sum(len(v) for v in data["documents"].values()), "invalid", bad)
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, input.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { throw XCTSkip("no python3: \(error)") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if output.hasPrefix("SKIP") { throw XCTSkip("Python's jsonschema is not installed") }
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("invalid 0"), output)
    }
}
