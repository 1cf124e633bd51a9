extension SyncReport {
    /// The cause a security log that cannot be appended gives the status line.
    static func securityLogCause(_ problem: String) -> String { "security log cannot be appended (\(problem))" }

    /// Notes, after the pass, that the security log cannot be appended (`problem` is a short,
    /// value-free phrase): ``securityLog`` holds it, an `ok` pass becomes `degraded` with it as
    /// the cause, and any other state keeps its cause with this one after it. The pass's own
    /// verdict is left as it was: the accounts were still synced (docs/security-log.md).
    public mutating func noteSecurityLogProblem(_ problem: String) {
        securityLog = problem
        let logCause = Self.securityLogCause(problem)
        if state == .ok {
            state = .degraded
            cause = logCause
        } else {
            cause = [cause, logCause].compactMap { $0 }.joined(separator: "; ")
        }
    }

    /// The report as the pass made it, before ``noteSecurityLogProblem(_:)``: what the next pass
    /// compares against, so that a broken log does not make it repeat transitions it already reported.
    public func withoutSecurityLogNote() -> SyncReport {
        guard let problem = securityLog else { return self }
        var report = self
        let logCause = Self.securityLogCause(problem)
        report.securityLog = nil
        if cause == logCause {
            report.state = .ok
            report.cause = nil
        } else if let cause, cause.hasSuffix("; " + logCause) {
            report.cause = String(cause.dropLast(logCause.count + 2))
        }
        return report
    }
}
