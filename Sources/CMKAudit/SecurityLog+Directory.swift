import CMKCore
import Glibc

extension SecurityLog {
    /// Who may change the directory that holds the security log: any owner (root may own it),
    /// but neither group nor others may write it, since whoever may write the directory may
    /// delete or replace the log and its anchor.
    public static let directoryRule = FileAccessRule(kind: .directory, forbidden: 0o022, ownedByUs: false)

    /// Refuses, with `.permissions` and ``FileAccessRule``'s wording, a state directory that is
    /// not a directory or that group or others may write (`chmod 700` fixes it). The daemon and
    /// `cmkctl` check it before building anything on the state directory.
    public static func requireProtectedDirectory(_ directory: String) throws(AuditError) {
        let info = try LogFile.mapped { () throws(SystemFileError) in try SystemFile.status(directory) }
        guard let info else { return }
        if let problem = directoryRule.problem(with: info, path: directory, what: "state directory") {
            throw AuditError(.permissions, "\(problem.description) (anyone who may write it may delete the security log)")
        }
    }
}
