import CMKCore
import Glibc
import Testing

@Suite("File access rules")
struct FileAccessRuleTests {
    private func info(_ type: mode_t, _ mode: mode_t, uid: uid_t = geteuid()) -> stat {
        var info = stat()
        info.st_mode = type | mode
        info.st_uid = uid
        return info
    }

    private let other: uid_t = geteuid() == 4242 ? 4343 : 4242

    @Test("a private file: regular, ours, no access for group or others")
    func privateFile() {
        let rule = FileAccessRule.privateFile
        #expect(rule.problem(with: info(S_IFREG, 0o600), path: "/p", what: "keyring file") == nil)
        #expect(rule.problem(with: info(S_IFREG, 0o400), path: "/p", what: "keyring file") == nil)
        let open = rule.problem(with: info(S_IFREG, 0o640), path: "/p", what: "keyring file")
        #expect(open?.kind == .mode)
        #expect(open?.description == "keyring file '/p' has mode 0640, which gives group or others access; fix it with: chmod 600 '/p'")
        let foreign = rule.problem(with: info(S_IFREG, 0o600, uid: other), path: "/p", what: "keyring file")
        #expect(foreign?.kind == .owner)
        #expect(foreign?.description == "keyring file '/p' is owned by uid \(other), not by this process (uid \(geteuid())); fix it with: chown \(geteuid()) '/p'")
        let directory = rule.problem(with: info(S_IFDIR, 0o600), path: "/p", what: "keyring file")
        #expect(directory?.description == "keyring file '/p' is not a regular file")
    }

    @Test("the type is checked first, then the owner, then the mode")
    func order() {
        let rule = FileAccessRule.privateFile
        #expect(rule.problem(with: info(S_IFLNK, 0o777, uid: other), path: "/p", what: "f")?.kind == .type)
        #expect(rule.problem(with: info(S_IFREG, 0o777, uid: other), path: "/p", what: "f")?.kind == .owner)
        #expect(rule.problem(with: info(S_IFREG, 0o604), path: "/p", what: "f")?.kind == .mode)
    }

    @Test("a private directory wants 0700")
    func privateDirectory() {
        let rule = FileAccessRule.privateDirectory
        #expect(rule.problem(with: info(S_IFDIR, 0o700), path: "/d", what: "account directory") == nil)
        #expect(rule.problem(with: info(S_IFDIR, 0o750), path: "/d", what: "account directory")?.description
                == "account directory '/d' has mode 0750, which gives group or others access; fix it with: chmod 700 '/d'")
        #expect(rule.problem(with: info(S_IFREG, 0o700), path: "/d", what: "account directory")?.description
                == "account directory '/d' is not a directory")
    }

    @Test("rules that only forbid writing let group and others read")
    func writeOnlyRules() {
        #expect(FileAccessRule.ownDirectory.problem(with: info(S_IFDIR, 0o755), path: "/v", what: "vault directory") == nil)
        #expect(FileAccessRule.ownDirectory.problem(with: info(S_IFDIR, 0o775), path: "/v", what: "vault directory")?.description
                == "vault directory '/v' has mode 0775, which lets group or others write it; fix it with: chmod 700 '/v'")
        #expect(FileAccessRule.ownDirectory.problem(with: info(S_IFDIR, 0o755, uid: other), path: "/v", what: "vault directory")?.kind == .owner)
        #expect(FileAccessRule.appendOnlyLog.problem(with: info(S_IFREG, 0o644, uid: other), path: "/l", what: "security log") == nil)
        #expect(FileAccessRule.appendOnlyLog.problem(with: info(S_IFREG, 0o602), path: "/l", what: "security log")?.description
                == "security log '/l' has mode 0602, which lets group or others write it; fix it with: chmod 600 '/l'")
    }

    @Test("a credential file may belong to anyone but only its owner may read it")
    func credentialFile() {
        let rule = FileAccessRule.credentialFile
        #expect(rule.problem(with: info(S_IFREG, 0o400, uid: other), path: "/c", what: "client secret file") == nil)
        #expect(rule.problem(with: info(S_IFREG, 0o440), path: "/c", what: "client secret file")?.kind == .mode)
        #expect(rule.problem(with: info(S_IFDIR, 0o400), path: "/c", what: "client secret file")?.kind == .type)
    }
}
