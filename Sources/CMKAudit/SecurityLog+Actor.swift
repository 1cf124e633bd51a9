import Glibc
import Foundation

extension SecurityLog {
    /// The local user behind this process, for operator actions: `SUDO_USER` when `cmkctl` runs
    /// under sudo (the person, not root), else the login name of the real uid, else `uid:<n>`.
    public static func localActor(environment: [String: String] = ProcessInfo.processInfo.environment) -> SecurityActor {
        if let sudoUser = environment["SUDO_USER"], !sudoUser.isEmpty {
            return .user(sudoUser)
        }
        let uid = getuid()
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, let found = result, let name = found.pointee.pw_name {
            return .user(String(cString: name))
        }
        return .user("uid:\(uid)")
    }
}
