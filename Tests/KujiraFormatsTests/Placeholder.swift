import XCTest
@testable import KujiraFormats
