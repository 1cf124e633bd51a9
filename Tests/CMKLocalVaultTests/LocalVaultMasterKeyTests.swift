import CMKCore
import CMKEnvelope
import CMKLocalVault
import Foundation
import Testing

@Suite("LocalVault master key")
struct LocalVaultMasterKeyTests {
    private func write(_ data: Data, to url: URL, mode: Int) throws {
        try data.write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
    }

    @Test func createdFileIsBase64WithMode0600AndNotOverwritten() async throws {
        try await withFixture { fixture in
            let attributes = try FileManager.default.attributesOfItem(atPath: fixture.masterKeyFile.path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let text = try String(contentsOf: fixture.masterKeyFile, encoding: .utf8)
            #expect(text.hasSuffix("\n"))
            #expect(Data(base64Encoded: text.trimmingCharacters(in: .newlines))?.count == 32)
            let error = await vaultError { try LocalVault.createMasterKeyFile(at: fixture.masterKeyFile) }
            #expect(error?.code == .conflict)
            #expect(try String(contentsOf: fixture.masterKeyFile, encoding: .utf8) == text)
        }
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o666])
    func looseFilePermissionsRefused(_ mode: Int) async throws {
        try await withFixture { fixture in
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: fixture.masterKeyFile.path)
            let error = await vaultError { _ = try fixture.open() }
            #expect(error?.code == .misconfigured)
            let reason = error?.reason ?? ""
            #expect(reason.contains(fixture.masterKeyFile.path))
            #expect(reason.contains("0" + String(mode, radix: 8)))
            #expect(reason.contains("chmod 600"))
        }
    }

    @Test(arguments: [0o600, 0o400])
    func strictFilePermissionsAccepted(_ mode: Int) async throws {
        try await withFixture { fixture in
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: fixture.masterKeyFile.path)
            _ = try fixture.open()
        }
    }

    @Test func rawAndBase64FormsOpenTheSameVault() async throws {
        try await withFixture { fixture in
            let bytes = Data((0..<32).map { UInt8($0 &* 7 &+ 3) })
            let raw = fixture.root.appendingPathComponent("raw.key")
            let base64 = fixture.root.appendingPathComponent("b64.key")
            try write(bytes, to: raw, mode: 0o600)
            try write(Data((bytes.base64EncodedString() + "\n").utf8), to: base64, mode: 0o600)
            let first = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: .file(raw), clock: fixture.clock))
            let version = try await first.createKey(key(), size: .bits2048)
            let dek = DEKWrapping.generateDEK()
            let wrapped = try await first.wrap(dek, key: key(), version: version.id, algorithm: .rsaOAEP256)
            let second = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: .file(base64), clock: fixture.clock))
            #expect(try await second.unwrap(wrapped, key: key(), version: version.id, algorithm: .rsaOAEP256) == dek)
            let inMemory = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: .bytes(SecretBytes(copying: bytes)), clock: fixture.clock))
            #expect(try await inMemory.unwrap(wrapped, key: key(), version: version.id, algorithm: .rsaOAEP256) == dek)
        }
    }

    @Test func systemdCredentialNeedsNoModeCheck() async throws {
        try await withFixture { fixture in
            let credentials = fixture.root.appendingPathComponent("credentials")
            try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
            let bytes = Data(repeating: 0x5A, count: 32)
            try write(Data(bytes.base64EncodedString().utf8), to: credentials.appendingPathComponent("vault-master-key"), mode: 0o444)
            let source = MasterKeySource.systemdCredential(name: "vault-master-key", credentialsDirectory: credentials)
            _ = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: source, clock: fixture.clock))
            let missing = await vaultError {
                _ = try LocalVault(configuration: .init(directory: fixture.vaultDirectory,
                                                        masterKey: .systemdCredential(name: "absent", credentialsDirectory: credentials)))
            }
            #expect(missing?.code == .misconfigured)
        }
    }

    @Test(arguments: [Data(count: 31), Data(count: 33), Data("not base64 at all!\n".utf8), Data(Data(count: 16).base64EncodedString().utf8)])
    func malformedKeyRefused(_ contents: Data) async throws {
        try await withFixture { fixture in
            let file = fixture.root.appendingPathComponent("bad.key")
            try write(contents, to: file, mode: 0o600)
            let error = await vaultError { _ = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: .file(file))) }
            #expect(error?.code == .misconfigured)
            #expect(error?.reason.contains(file.path) == true)
            #expect(error?.reason.contains("32") == true)
        }
    }

    @Test func wrongMasterKeyRefusedClearly() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            _ = try await vault.createKey(key(), size: .bits2048)
            let otherFile = fixture.root.appendingPathComponent("other.key")
            try LocalVault.createMasterKeyFile(at: otherFile)
            let error = await vaultError { _ = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: .file(otherFile))) }
            #expect(error?.code == .misconfigured)
            #expect(error?.reason.contains("wrong master key") == true)
        }
    }

    @Test func missingMasterKeyFileNamesThePath() async throws {
        try await withFixture { fixture in
            let absent = fixture.root.appendingPathComponent("absent.key")
            let error = await vaultError { _ = try LocalVault(configuration: .init(directory: fixture.vaultDirectory, masterKey: .file(absent))) }
            #expect(error?.code == .misconfigured)
            #expect(error?.reason.contains(absent.path) == true)
        }
    }
}
