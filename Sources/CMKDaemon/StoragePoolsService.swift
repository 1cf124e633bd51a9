import CMKPostgresStorage
import Logging
import ServiceLifecycle

/// The daemon's PostgreSQL connection pools (one per database, `PostgresStore.shared`) as a
/// member of its `ServiceGroup`. A pool starts with its first operation; this service ends them
/// all when the group shuts down gracefully (SIGTERM, SIGINT, or the end of `run --once`). It is
/// listed before ``SyncService`` and the group stops services in reverse order, so the pools
/// close after the last pass has finished with them: every connection ends with PostgreSQL's
/// Terminate message instead of a dropped socket, and no statement is cut off mid-way.
struct StoragePoolsService: Service {
    let logger: Logger

    func run() async throws {
        // Returns at the group's graceful shutdown; throws if the group is cancelled instead.
        try? await gracefulShutdown()
        let closed = await PostgresStore.shutdownShared()
        if closed > 0 {
            logger.info("Closed the PostgreSQL connection pools.", metadata: ["cmk_postgres_pools": "\(closed)"])
        }
    }
}
