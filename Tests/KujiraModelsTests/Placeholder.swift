import XCTest
@testable import KujiraModels
