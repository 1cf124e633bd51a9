import CMKCore
import CMKEnvelope
@testable import CMKLocalVault
import Foundation
import Testing

@Suite("LocalVault on disk")
struct LocalVaultDiskTests {
    private func mode(_ url: URL) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int ?? -1
    }

    private func json(_ url: URL) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private func writeJSON(_ object: [String: Any], to url: URL) throws {
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    @Test func layoutAndModes() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let version = try await vault.createKey(key(), size: .bits2048)
            #expect(try mode(fixture.vaultDirectory) == 0o700)
            #expect(try mode(fixture.vaultDirectory.appendingPathComponent("keys")) == 0o700)
            let file = fixture.keyFile(key().name)
            #expect(try mode(file) == 0o600)
            let document = try json(file)
            #expect(document["format"] as? Int == 1)
            #expect(document["name"] as? String == key().name)
            let versions = try #require(document["versions"] as? [[String: Any]])
            #expect(versions.first?["id"] as? String == version.id)
            #expect(versions.first?["keySize"] as? Int == 2048)
            let sealed = try #require(versions.first?["sealedPrivateKey"] as? [String: Any])
            #expect(sealed["algorithm"] as? String == "A256GCM")
            // No temp files are left behind.
            #expect(try fixture.allVaultFiles().allSatisfy { !$0.lastPathComponent.hasSuffix(".tmp") })
        }
    }

    @Test(arguments: [0o777, 0o775, 0o757, 0o720])
    func writableVaultDirectoryRefused(_ directoryMode: Int) async throws {
        try await withFixture { fixture in
            _ = try fixture.open()
            try FileManager.default.setAttributes([.posixPermissions: directoryMode], ofItemAtPath: fixture.vaultDirectory.path)
            let error = await vaultError { _ = try fixture.open() }
            #expect(error?.code == .misconfigured)
            #expect(error?.reason.contains(fixture.vaultDirectory.path) == true)
            #expect(error?.reason.contains("0" + String(directoryMode, radix: 8)) == true)
            #expect(error?.reason.contains("chmod 700") == true)
        }
    }

    @Test func vaultPathThatIsAFileRefused() async throws {
        try await withFixture { fixture in
            try Data("x".utf8).write(to: fixture.vaultDirectory)
            #expect(await vaultError { _ = try fixture.open() }?.code == .misconfigured)
        }
    }

    @Test(arguments: ["{ not json", "{}", #"{"format":1,"name":"data-at-rest-rsa2048","versions":[{"id":1}]}"#])
    func corruptJSONNamesTheFile(_ contents: String) async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            _ = try await vault.createKey(key(), size: .bits2048)
            let file = fixture.keyFile(key().name)
            try Data(contents.utf8).write(to: file)
            let error = await vaultError { _ = try await vault.snapshot(of: key()) }
            #expect(error?.code == .corrupt)
            #expect(error?.reason.contains(file.path) == true)
            #expect(await vaultError { _ = try await vault.rotateKey(key()) }?.code == .corrupt)
        }
    }

    @Test(arguments: [0o666, 0o644, 0o620, 0o604])
    func keyFileOthersCanReadOrWriteRefused(_ fileMode: Int) async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            _ = try await vault.createKey(key(), size: .bits2048)
            let file = fixture.keyFile(key().name)
            try FileManager.default.setAttributes([.posixPermissions: fileMode], ofItemAtPath: file.path)
            for opened in [vault, try fixture.open()] {
                let error = await vaultError { _ = try await opened.snapshot(of: key()) }
                #expect(error?.code == .misconfigured)
                #expect(error?.reason.contains("key file '\(file.path)'") == true)
                #expect(error?.reason.contains("0" + String(fileMode, radix: 8)) == true)
                #expect(error?.reason.contains("chmod 600") == true)
                #expect(await vaultError { _ = try await opened.rotateKey(key()) }?.code == .misconfigured)
            }
        }
    }

    @Test(arguments: [0o666, 0o644])
    func vaultFileOthersCanReadOrWriteRefused(_ fileMode: Int) async throws {
        try await withFixture { fixture in
            _ = try fixture.open()
            let marker = fixture.vaultDirectory.appendingPathComponent("vault.json")
            try FileManager.default.setAttributes([.posixPermissions: fileMode], ofItemAtPath: marker.path)
            let error = await vaultError { _ = try fixture.open() }
            #expect(error?.code == .misconfigured)
            #expect(error?.reason.contains("vault file '\(marker.path)'") == true)
            #expect(error?.reason.contains("chmod 600") == true)
        }
    }

    @Test func duplicateVersionIDsRefusedAsCorrupt() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let first = try await vault.createKey(key(), size: .bits2048)
            _ = try await vault.rotateKey(key())
            let file = fixture.keyFile(key().name)
            var document = try json(file)
            var versions = try #require(document["versions"] as? [[String: Any]])
            versions[1]["id"] = first.id
            document["versions"] = versions
            try writeJSON(document, to: file)
            let error = await vaultError { _ = try await vault.snapshot(of: key()) }
            #expect(error?.code == .corrupt)
            #expect(error?.reason.contains(file.path) == true)
            #expect(error?.reason.contains("lists version \(first.id) twice") == true)
        }
    }

    @Test func keyFileCopiedUnderAnotherNameRefused() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            _ = try await vault.createKey(key(), size: .bits2048)
            try FileManager.default.copyItem(at: fixture.keyFile(key().name), to: fixture.keyFile("copy"))
            let error = await vaultError { _ = try await vault.snapshot(of: key("copy")) }
            #expect(error?.code == .corrupt)
            #expect(error?.reason.contains("copy.json") == true)
        }
    }

    @Test func sealedKeyMovedToAnotherVersionFailsAuthentication() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let v1 = try await vault.createKey(ref, size: .bits2048)
            let v2 = try await vault.rotateKey(ref)
            let dek = DEKWrapping.generateDEK()
            let wrapped = try await vault.wrap(dek, key: ref, version: v1.id, algorithm: .rsaOAEP256)

            // Swap v2's sealed key into v1 (and v1's public key, so only the seal can notice).
            let file = fixture.keyFile(ref.name)
            var document = try json(file)
            var versions = try #require(document["versions"] as? [[String: Any]])
            versions[0]["sealedPrivateKey"] = versions[1]["sealedPrivateKey"]
            document["versions"] = versions
            try writeJSON(document, to: file)

            let fresh = try fixture.open()
            let error = try #require(await vaultError { _ = try await fresh.unwrap(wrapped, key: ref, version: v1.id, algorithm: .rsaOAEP256) })
            #expect(error.code == .corrupt)
            #expect(error.reason.contains(file.path))
            #expect(error.reason.contains(v1.id))
            #expect(error.reason.contains("master key is wrong or the file was tampered with"))
            #expect(!String(describing: error).contains(dek.withUnsafeBytes { Data($0).base64EncodedString() }))
            _ = v2
        }
    }

    @Test func flippedCiphertextByteFailsAuthentication() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let wrapped = try await vault.wrap(DEKWrapping.generateDEK(), key: ref, version: version.id, algorithm: .rsaOAEP256)
            let file = fixture.keyFile(ref.name)
            var document = try json(file)
            var versions = try #require(document["versions"] as? [[String: Any]])
            var sealed = try #require(versions[0]["sealedPrivateKey"] as? [String: Any])
            let ciphertextText = try #require(sealed["ciphertext"] as? String)
            var ciphertext = try #require(Data(base64Encoded: ciphertextText))
            ciphertext[10] ^= 0x01
            sealed["ciphertext"] = ciphertext.base64EncodedString()
            versions[0]["sealedPrivateKey"] = sealed
            document["versions"] = versions
            try writeJSON(document, to: file)
            let error = await vaultError { _ = try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }
            #expect(error?.code == .corrupt)
            #expect(error?.reason.contains(file.path) == true)
        }
    }

    @Test func noSecretInPlaintextOnDiskOrInErrors() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let dek = DEKWrapping.generateDEK()
            let wrapped = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256)
            #expect(try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)
            // The parsed key lives in libcrypto; the DER to look for is what the seal holds.
            let stored = try #require(try vault.cachedFile(ref)?.document.version(version.id))
            let privateDER = try Sealing.open(stored.sealedPrivateKey, key: ref.name, version: version.id,
                                              masterKey: vault.masterKey, path: fixture.keyFile(ref.name).path)
                .withUnsafeBytes { Data($0) }
            let dekBytes = dek.withUnsafeBytes { Data($0) }
            let masterText = try String(contentsOf: fixture.masterKeyFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            let masterBytes = try #require(Data(base64Encoded: masterText))
            // The private exponent region alone must not appear either.
            let privateMiddle = privateDER[privateDER.startIndex + 300 ..< privateDER.startIndex + 364]
            let needles: [Data] = [privateDER, Data(privateMiddle), Data(privateDER.base64EncodedString().utf8),
                                   Data(Data(privateMiddle).base64EncodedString().dropFirst(4).prefix(40).utf8),
                                   dekBytes, Data(dekBytes.base64EncodedString().utf8), masterBytes, Data(masterText.utf8)]
            let files = try fixture.allVaultFiles()
            #expect(files.count >= 2)
            for file in files {
                let contents = try Data(contentsOf: file)
                for needle in needles { #expect(contents.range(of: needle) == nil, "secret found in \(file.path)") }
            }

            // Errors carry no key material.
            _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: false))
            var errors: [VaultError] = []
            if let error = await vaultError({ _ = try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }) { errors.append(error) }
            if let error = await vaultError({ _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256) }) { errors.append(error) }
            _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: true))
            let other = try await vault.rotateKey(ref)
            if let error = await vaultError({ _ = try await vault.unwrap(wrapped, key: ref, version: other.id, algorithm: .rsaOAEP256) }) { errors.append(error) }
            #expect(errors.count == 3)
            let hex = dekBytes.map { String(format: "%02x", $0) }.joined()
            for error in errors {
                let text = String(describing: error) + String(reflecting: error)
                #expect(!text.contains(dekBytes.base64EncodedString()))
                #expect(!text.contains(hex))
                #expect(!text.contains(privateDER.base64EncodedString().prefix(80)))
            }
        }
    }

    @Test func concurrentRotationsFromTwoInstancesLoseNoVersion() async throws {
        try await withFixture { fixture in
            let first = try fixture.open()
            let second = try fixture.open()
            let ref = key()
            let initial = try await first.createKey(ref, size: .bits2048)
            let perTask = 3
            let created = try await withThrowingTaskGroup(of: [KeyVersion].self) { group in
                for vault in [first, second, first, second] {
                    group.addTask {
                        var versions: [KeyVersion] = []
                        for _ in 0..<perTask { versions.append(try await vault.rotateKey(ref)) }
                        return versions
                    }
                }
                // A reader that must never see a torn or missing file meanwhile.
                group.addTask {
                    for _ in 0..<50 {
                        guard case .present = try await second.snapshot(of: ref) else {
                            Issue.record("reader saw the key as not present")
                            return []
                        }
                    }
                    return []
                }
                var all: [KeyVersion] = []
                for try await versions in group { all += versions }
                return all
            }
            #expect(created.count == 4 * perTask)
            let state = try await presentState(first, ref)
            #expect(state.versions.count == 1 + 4 * perTask)
            #expect(Set(state.versions.map(\.id)) == Set([initial.id] + created.map(\.id)))
            #expect(state.versions.first == initial)
            #expect(try fixture.allVaultFiles().allSatisfy { !$0.lastPathComponent.hasSuffix(".tmp") })
        }
    }
}
