import XCTest
@testable import KujiraTensor
