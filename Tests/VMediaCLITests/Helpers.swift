import XCTest
@testable import VMediaCLI

/// Asserts that `body` throws a `VMediaError` with this exit status and a message containing
/// `text`; returns the error.
@discardableResult
func assertFails<T>(_ exit: ExitStatus, _ text: String, file: StaticString = #filePath, line: UInt = #line,
                    _ body: () throws -> T) -> VMediaError? {
    do {
        _ = try body()
        XCTFail("expected a failure containing \"\(text)\"", file: file, line: line)
    } catch let error as VMediaError {
        XCTAssertEqual(error.exit, exit, "\(error)", file: file, line: line)
        XCTAssertTrue(error.description.contains(text), "\"\(error)\" lacks \"\(text)\"", file: file, line: line)
        XCTAssertTrue(error.description.hasPrefix("vmedia: "), file: file, line: line)
        return error
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
    return nil
}

/// Parses JSON output with Foundation, to check it is valid JSON and look inside.
func parseJSON(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> Any? {
    do { return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) } catch {
        XCTFail("not JSON: \(error)\n\(text)", file: file, line: line)
        return nil
    }
}
