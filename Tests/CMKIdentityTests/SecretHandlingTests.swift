import CMKIdentity
import Foundation
import Testing

@Suite struct SecretHandlingTests {
    /// Every spelling of a secret someone could look for: its text, its bytes in base64 and hex.
    static func spellings(of secret: String) throws -> [Data] {
        let bytes = try #require(Base64URL.decode(secret))
        #expect(bytes.count == 32)
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        return [secret, bytes.base64EncodedString(), hex, hex.uppercased()].map { Data($0.utf8) } + [bytes]
    }

    /// Runs of 43 or more base64url characters: what a secret looks like in a text.
    static func secretLikeRuns(_ text: String) -> [Substring] {
        text.split { !($0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_")) }.filter { $0.count >= ClientSecret.textLength }
    }

    @Test func secretsNeverReachTheDatabaseNorAnError() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        var secrets: [String] = []
        for index in 1...10 { secrets.append(try store.addAdministrator(name: "admin \(index)").secret.text) }
        let admin = try store.administrators()[0].clientID
        secrets.append(try store.replaceAdministratorSecret(clientID: admin).secret.text)
        secrets.append(try store.addPlatformIdentity(host: "host-1.example.net").secret.text)
        for index in 1...3 { secrets.append(try #require(try store.addServicePrincipalCredential(displayName: "key \(index)").secretText)) }
        // Every refusal thrown while a fresh secret was already generated.
        var errors: [any Error] = []
        do { _ = try store.addAdministrator(name: "admin 11") } catch { errors.append(error) }
        do { _ = try store.addPlatformIdentity(host: "HOST-1.example.net") } catch { errors.append(error) }
        do { _ = try store.addServicePrincipalCredential(displayName: "KEY 1") } catch { errors.append(error) }
        do { _ = try store.replaceAdministratorSecret(clientID: UUID().uuidString) } catch { errors.append(error) }
        try store.removeAdministrator(clientID: admin)
        do { _ = try store.replaceAdministratorSecret(clientID: admin) } catch { errors.append(error) }
        #expect(errors.count == 5)
        for error in errors { #expect(Self.secretLikeRuns("\(error)").isEmpty, "a secret-like value is in an error: \(error)") }
        // Authenticating with each secret leaves no trace of it either.
        for secret in secrets { _ = try store.authenticate(clientID: store.tenant.servicePrincipalClientID, secret: secret) }
        // The database and its WAL (checkpointed or not) are scanned.
        let files = [store.path, store.path + "-wal"].compactMap { FileManager.default.contents(atPath: $0) }
        #expect(files.count == 2)
        #expect(files.reduce(0) { $0 + $1.count } > 4096)
        for secret in secrets {
            for spelling in try Self.spellings(of: secret) {
                for file in files { #expect(file.range(of: spelling) == nil, "a secret's spelling is in the store's files") }
                for error in errors { #expect(!"\(error)".contains(String(decoding: spelling, as: UTF8.self)), "a secret is in an error") }
            }
            // What is stored instead: its hash (found, so the scan finds what is there).
            #expect(files.contains { $0.range(of: ClientSecret.hash(of: secret)) != nil })
        }
    }

    @Test func secretsAreFreshAndURLSafe() {
        let secrets = (0..<200).map { _ in ClientSecret.generate().text }
        #expect(Set(secrets).count == 200)
        for secret in secrets {
            #expect(secret.count == 43)
            #expect(Self.secretLikeRuns(secret) == [Substring(secret)])
            #expect(Base64URL.decode(secret)?.count == 32)
        }
        // Each of the 256 bits varies: no constant byte across 200 secrets.
        let bytes = secrets.map { Array(Base64URL.decode($0)!) }
        for position in 0..<32 { #expect(Set(bytes.map { $0[position] }).count > 1) }
    }

    /// A byte collection that counts the bytes read from it.
    final class CountingBytes: Collection {
        let bytes: [UInt8]
        var reads = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var startIndex: Int { 0 }
        var endIndex: Int { bytes.count }
        func index(after index: Int) -> Int { index + 1 }
        subscript(position: Int) -> UInt8 { reads += 1; return bytes[position] }
    }

    @Test func theComparisonReadsEveryByteWhereverTheyDiffer() {
        let secret = Array(ClientSecret.hash(of: "x"))
        for position in [0, 1, 16, 31] {
            var other = secret
            other[position] ^= 0x01
            let a = CountingBytes(secret), b = CountingBytes(other)
            #expect(!ConstantTime.equal(a, b))
            #expect(a.reads == 32 && b.reads == 32, "stopped early at a difference in byte \(position)")
        }
        let a = CountingBytes(secret), b = CountingBytes(secret)
        #expect(ConstantTime.equal(a, b))
        #expect(a.reads == 32)
        #expect(!ConstantTime.equal(secret, secret.dropLast()))
        #expect(ClientSecret.matches("x", storedHash: ClientSecret.hash(of: "x")))
        #expect(!ClientSecret.matches("y", storedHash: ClientSecret.hash(of: "x")))
    }

    @Test func base64URLHasOneSpelling() {
        #expect(Base64URL.decode("AQID") == Data([1, 2, 3]))
        #expect(Base64URL.decode("AQ") == Data([1]))
        for bad in ["AQ==", "A+/_", "AQI D", "A", "AR"] { #expect(Base64URL.decode(bad) == nil, "\(bad)") }
    }
}
