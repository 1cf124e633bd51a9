import CMKCore
import CMKEnvelope
import Crypto
import Foundation
import Testing

@Suite("DEK check values")
struct DEKCheckValueTests {
    let dek = DEKWrapping.generateDEK()
    let id = DEKID.random()

    @Test func definitionIsTruncatedHMACOverLabelAccountAndID() throws {
        let value = DEKCheckValue.compute(dek: dek, account: "files-1", id: id)
        #expect(value.count == 16)
        var message = Data("cmk-syncer dek-check v1".utf8) + [0, 0, 0, 0, 7] + Data("files-1".utf8)
        message.append(contentsOf: id.bytes)
        let full = HMAC<SHA256>.authenticationCode(for: message, using: dek.symmetricKey)
        #expect(value == Data(full.prefix(16)))
        #expect(DEKCheckValue.matches(value, dek: dek, account: "files-1", id: id))
    }

    @Test func anotherDEKAccountOrIDDoesNotMatch() throws {
        let value = DEKCheckValue.compute(dek: dek, account: "files-1", id: id)
        #expect(!DEKCheckValue.matches(value, dek: DEKWrapping.generateDEK(), account: "files-1", id: id))
        #expect(!DEKCheckValue.matches(value, dek: dek, account: "files-2", id: id))
        #expect(!DEKCheckValue.matches(value, dek: dek, account: "files-1", id: .random()))
        #expect(!DEKCheckValue.matches(value.prefix(8), dek: dek, account: "files-1", id: id))
        #expect(!DEKCheckValue.matches(Data(), dek: dek, account: "files-1", id: id))
        // The account's length is bound: "ab" + id never collides with "a" + "b…".
        #expect(DEKCheckValue.compute(dek: dek, account: "a", id: id) != DEKCheckValue.compute(dek: dek, account: "ab", id: id))
    }

    @Test func theValueIsNotTheKey() {
        let value = DEKCheckValue.compute(dek: dek, account: "files-1", id: id)
        let bytes = dek.withUnsafeBytes { Data($0) }
        #expect(bytes.range(of: value) == nil)
        #expect(value.range(of: bytes.prefix(8)) == nil)
    }
}
