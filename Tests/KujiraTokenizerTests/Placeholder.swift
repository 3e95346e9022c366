import XCTest
@testable import KujiraTokenizer
