import CryptoExtras
import Foundation

/// The key operations the emulator performs with the real private key.
enum CryptoOperation: String, Sendable {
    case wrapKey, unwrapKey, encrypt, decrypt

    init?(pathSegment: String) {
        switch pathSegment {
        case "wrapkey": self = .wrapKey
        case "unwrapkey": self = .unwrapKey
        case "encrypt": self = .encrypt
        case "decrypt": self = .decrypt
        default: return nil
        }
    }

    /// Wrap and encrypt use the public half and are refused once the key has expired; Azure still
    /// allows unwrap and decrypt of existing data after `exp`.
    var isProtecting: Bool { self == .wrapKey || self == .encrypt }
}

extension KeyVaultAPI {
    /// The RSA algorithms Key Vault offers for wrap/unwrap and encrypt/decrypt.
    static let algorithms: [String: _RSA.Encryption.Padding] = [
        "RSA-OAEP": .PKCS1_OAEP,
        "RSA-OAEP-256": .PKCS1_OAEP_SHA256,
        "RSA1_5": ._WEAK_AND_INSECURE_PKCS_V1_5,
    ]

    func perform(_ operation: CryptoOperation, name: String, version: String?, body: Data) throws -> ServerResponse {
        let request = try decode(Wire.KeyOperation.self, body)
        let record = try lookUp(name, version: version)
        guard record.enabled else { throw KeyVaultError.disabled(operation.rawValue) }
        guard record.keyOps.contains(operation.rawValue) else { throw KeyVaultError.operationNotPermitted(operation.rawValue) }
        let now = now
        // Date-time controlled operations: outside [nbf, exp) a key still decrypts and unwraps
        // (no 403); only encrypt and wrap are refused.
        if let nbf = record.notBefore, now < nbf, operation.isProtecting { throw KeyVaultError.notYetValid(operation.rawValue) }
        if let exp = record.expires, now >= exp, operation.isProtecting { throw KeyVaultError.expired(operation.rawValue) }

        guard let alg = request.alg else {
            throw KeyVaultError.badParameter("Property 'alg' is required; accepted values: RSA-OAEP, RSA-OAEP-256, RSA1_5.")
        }
        guard let padding = Self.algorithms[alg] else {
            throw KeyVaultError.badParameter("Algorithm '\(alg)' is not supported for key type '\(record.kty)'; accepted values: RSA-OAEP, RSA-OAEP-256, RSA1_5.")
        }
        guard let text = request.value, let input = KeyVaultBase64URL.decode(text) else {
            throw KeyVaultError.badParameter("Property 'value' is required and must be base64url.")
        }
        let privateKey: _RSA.Encryption.PrivateKey
        do {
            privateKey = try record.privateKey.privateKey()
        } catch {
            throw KeyVaultError.serverError(500)
        }
        let output: Data
        switch operation {
        case .wrapKey, .encrypt:
            do {
                output = try privateKey.publicKey.encrypt(input, padding: padding)
            } catch {
                throw KeyVaultError.badParameter("The value is too long for \(alg) with an RSA-\(record.keySize) key.")
            }
        case .unwrapKey, .decrypt:
            guard input.count == record.keySize / 8 else {
                throw KeyVaultError.badParameter("The ciphertext has \(input.count) bytes; an RSA-\(record.keySize) ciphertext has \(record.keySize / 8).")
            }
            do {
                output = try privateKey.decrypt(input, padding: padding)
            } catch {
                throw KeyVaultError.badParameter("The parameter is incorrect: the ciphertext does not decrypt with this key version and \(alg).")
            }
        }
        return .json(200, Wire.KeyOperationResult(kid: kid(name, record.version), value: KeyVaultBase64URL.encode(output)))
    }
}
