// The daemon's service graph, state files, lock and exit codes live in CMKHost (shared with
// cmkctl, which does not link the daemon); importing CMKDaemon brings them along.
@_exported import CMKHost
