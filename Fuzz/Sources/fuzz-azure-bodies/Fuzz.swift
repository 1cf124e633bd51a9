@testable import CMKAzureKeyVault
import CMKCore
import Foundation
import FuzzSupport
import Synchronization

// Every JSON body (and the headers) the Azure provider reads, through its real pipeline: an
// AzureKeyVault over a transport that answers the operation chosen by the first input byte with the
// rest of the input as the body, with a status and header chosen by the second byte. The token
// endpoint (IMDS here) answers a valid token unless the token operation is chosen, when the input
// is the token response. No retries, no rate limit: an input is one request and its answer.
struct FuzzTransport: AzureHTTPTransport {
    let tokenBody: Data?
    let status: Int
    let headers: [(name: String, value: String)]
    let body: Data

    func send(_ request: AzureHTTPRequest) async throws -> AzureHTTPResponse {
        if request.url.path.hasSuffix("/metadata/identity/oauth2/token") {
            guard let tokenBody else {
                return AzureHTTPResponse(status: 200, body: Data(#"{"token_type":"Bearer","expires_in":3600,"access_token":"t"}"#.utf8))
            }
            return AzureHTTPResponse(status: status, headers: headers, body: tokenBody)
        }
        return AzureHTTPResponse(status: tokenBody == nil ? status : 200, headers: headers, body: body)
    }
}

// Statuses the provider answers without a retry or a wait (429 and 5xx would sleep for real).
let statuses = [200, 200, 200, 200, 400, 401, 403, 404, 409]
let configuration = AzureKeyVaultConfiguration(
    vaultURL: URL(string: "https://fuzz.vault.azure.net")!, credential: .managedIdentity(clientID: nil), apiVersion: "7.6",
    rateLimit: .init(operations: Int(Int32.max), period: .seconds(1)),
    retry: RequestRetryPolicy(maxAttempts: 1, baseDelay: .zero, maxDelay: .zero, maximumRetryAfter: .zero))
let key = try! KeyReference("fuzz-key")
let version = "0123456789abcdef0123456789abcdef"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let operation = data[0] % 5
    let status = statuses[Int(data[1]) % statuses.count]
    let body = Data(bytes: data + 2, count: size - 2)
    // A 401 carries a challenge; its header is the body's first line, so the challenge parser is fuzzed too.
    let headers: [(name: String, value: String)] = status == 401
        ? [("WWW-Authenticate", String(decoding: body.prefix(while: { $0 != 10 }), as: UTF8.self))] : []
    let transport = FuzzTransport(tokenBody: operation == 4 ? body : nil, status: status, headers: headers, body: body)
    blocking {
        guard let vault = try? AzureKeyVault(configuration: configuration, transport: transport) else { preconditionFailure("configuration") }
        switch operation {
        case 0, 4: _ = try? await vault.snapshot(of: key)
        case 1: _ = try? await vault.publicKey(of: key, version: version)
        case 2: _ = try? await vault.unwrap(Data(repeating: 1, count: 256), key: key, version: version, algorithm: .rsaOAEP256)
        default: _ = try? await vault.deletedKey(key)
        }
    }
    // The header parsers, on the same text.
    let text = String(decoding: body, as: UTF8.self)
    _ = AuthenticationChallenge(header: text)
    _ = RetryAfter.parse(text, now: Date(timeIntervalSince1970: 1_800_000_000))
    _ = Base64URL.decode(text)
    return 0
}
