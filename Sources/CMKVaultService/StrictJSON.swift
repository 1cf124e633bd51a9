import Foundation
import Hummingbird

/// Request bodies are read strictly: at most the configured size (413 beyond), one JSON object,
/// no field this version does not know (each named in the error with what is accepted), and
/// values of the declared types.
enum StrictJSON {
    /// Decodes `type` from the request body; `allowed` maps each accepted top-level field to the
    /// fields accepted inside it (empty for a scalar).
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: VaultRequestContext,
                                     allowed: [String: Set<String>]) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let data = Data(buffer: buffer)
        guard let object = (try? JSONSerialization.jsonObject(with: data, options: [])) as? [String: Any] else {
            throw ServiceError.badRequest("the body is not a JSON object")
        }
        let accepted = allowed.keys.sorted().joined(separator: ", ")
        for (key, value) in object {
            guard let inner = allowed[key] else {
                throw ServiceError.badRequest("unknown field '\(String(key.prefix(64)))' (accepted: \(accepted))")
            }
            if !inner.isEmpty {
                guard let nested = value as? [String: Any] else { throw ServiceError.badRequest("\(key) must be a JSON object") }
                for nestedKey in nested.keys where !inner.contains(nestedKey) {
                    throw ServiceError.badRequest("unknown field '\(key).\(String(nestedKey.prefix(64)))' (accepted: \(inner.sorted().joined(separator: ", ")))")
                }
            }
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as ServiceError {
            throw error  // a type's own check inside (a nested object's unknown field)
        } catch let DecodingError.typeMismatch(_, context) {
            throw ServiceError.badRequest("\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw ServiceError.badRequest("the body does not have the expected fields (accepted: \(accepted))")
        }
    }
}
