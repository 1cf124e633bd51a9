import CMKDaemon
import Testing

/// `sync.instance-name`'s default (docs/configuration.md): the host name, plus the instance of a
/// templated unit read from /proc/self/cgroup, so two daemons on one host in `cmk-syncer@a` and
/// `cmk-syncer@b` are told apart in leases and status.
@Suite struct InstanceNameTests {
    @Test("host name alone outside a templated unit; host@instance inside cmk-syncer@instance.service")
    func defaultName() {
        #expect(Daemon.defaultInstanceName(cgroup: "0::/system.slice/cmk-syncer.service\n", host: "db-1") == "db-1")
        #expect(Daemon.defaultInstanceName(cgroup: "0::/system.slice/system-cmk\\x2dsyncer.slice/cmk-syncer@east.service\n", host: "db-1") == "db-1@east")
        #expect(Daemon.defaultInstanceName(cgroup: "0::/user.slice/user-0.slice/session-4.scope\n", host: "db-1") == "db-1")
        #expect(Daemon.defaultInstanceName(cgroup: nil, host: "db-1") == "db-1")
    }
}
