import XCTest
@testable import KujiraGeneration
