import CMKCore
import CMKEntra
import CMKIdentity
@testable import CMKVaultService
import Foundation
import FuzzSupport
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

// What cmk-vault parses from a request (docs/vault-service.md), called directly, not over HTTP. The
// first input byte picks the parser, the rest is its input:
//   0-2  a JSON body through StrictJSON (add-password, remove-password, usage report)
//   3    the token endpoint's form body (FormEncoding: repeated names, decode, the scope's resource)
//   4    the Security Logs API's query string (SecurityLogRoutes.query, number, time)
//   5    an Authorization header: BearerAuthentication's "Bearer " check, then TokenService.verify
//        against a real identity store and signing keys in a temporary state directory.
let context = VaultRequestContext(source: .init(logger: Logger(label: "fuzz"), remoteAddress: "192.0.2.1", maxUploadSize: 1 << 20))
let audience = "https://vault.fuzz.test"
let tokens: TokenService = {
    var template = Array("/tmp/cmk-fuzz-identity-XXXXXX".utf8CString)
    guard let directory = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
        preconditionFailure("mkdtemp failed")
    }
    let store = try! IdentityStore(stateDirectory: directory)
    return TokenService(store: store, keys: try! TokenSigningKeys(stateDirectory: directory), issuerBase: audience)
}()

func request(path: String, body: Data) -> Request {
    let head = HTTPRequest(method: .post, scheme: "https", authority: "vault.fuzz.test", path: path)
    return Request(head: head, body: RequestBody(buffer: ByteBuffer(bytes: body)))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = Data(bytes: data + 1, count: size - 1)
    let text = String(decoding: input, as: UTF8.self)
    switch data[0] % 6 {
    case 0, 1, 2:
        let which = data[0] % 6
        blocking {
            let body = request(path: "/v1.0/x", body: input)
            switch which {
            case 0: _ = try? await StrictJSON.decode(VaultRoutes.AddPasswordRequest.self, from: body, context: context,
                                                     allowed: ["passwordCredential": ["displayName", "endDateTime"]])
            case 1: _ = try? await StrictJSON.decode(VaultRoutes.RemovePasswordRequest.self, from: body, context: context, allowed: ["keyId": []])
            default: _ = try? await StrictJSON.decode(UsageRoutes.ReportBody.self, from: body, context: context, allowed: UsageRoutes.bodyFields)
            }
        }
    case 3:
        _ = FormEncoding.repeatedNames(text)
        let form = FormEncoding.decode(text)
        if let scope = form["scope"] { _ = OpenIDConfiguration.resource(ofScope: scope) }
    case 4:
        let query = try? SecurityLogRoutes.query(request(path: "/securityLogs/records?" + text, body: Data()),
                                                 allowed: ["from", "to", "actor", "operation", "$top", "$skiptoken", "index", "size"])
        for name in ["$top", "$skiptoken", "index", "size"] { _ = try? SecurityLogRoutes.number(query ?? [:], name) }
        for name in ["from", "to"] { if let value = query?[name] { _ = try? SecurityLogRoutes.time(value, name) } }
    default:
        guard text.count > 7, text.prefix(7).lowercased() == "bearer " else { return 0 }
        _ = try? tokens.verify(String(text.dropFirst(7)), audience: audience)
    }
    return 0
}

// FUZZ_WRITE_SEEDS=<dir>: writes an Authorization header with a token this harness's service issued
// (its signing key lives only in the temporary directory, so later runs see it as an unknown key).
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] else { return 0 }
    let admin = try! tokens.store.addAdministrator(name: "fuzz admin")
    let token = try! tokens.issue(for: Principal(role: admin.role, clientID: admin.clientID, credentialID: admin.credentialID), audience: audience)
    FileManager.default.createFile(atPath: "\(directory)/bearer-token", contents: Data([5] + Array("Bearer \(token.token)".utf8)))
    exit(0)
}
