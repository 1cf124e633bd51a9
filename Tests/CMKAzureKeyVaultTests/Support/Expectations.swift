import CMKCore
import Testing

/// Runs `body`, expecting it to throw a ``VaultError`` with `code`; returns the error.
func expectVaultError(_ code: VaultError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () async throws -> Void) async -> VaultError? {
    do {
        try await body()
        Issue.record("expected \(code), but it succeeded", sourceLocation: sourceLocation)
    } catch let error as VaultError {
        #expect(error.code == code, "expected \(code), got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected VaultError \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
