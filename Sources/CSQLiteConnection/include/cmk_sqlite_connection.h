#ifndef CMK_SQLITE_CONNECTION_H
#define CMK_SQLITE_CONNECTION_H

#include <sqlite3.h>

/// sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &result): closing the connection
/// never checkpoints the WAL. sqlite3_db_config is variadic, which Swift cannot call.
/// Returns an SQLite result code; *enabled tells whether the option is now on.
int cmk_sqlite_disable_checkpoint_on_close(sqlite3 *db, int *enabled);

/// sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0): no lookaside memory (by default
/// about 120 KiB allocated per connection up front). Returns an SQLite result code.
int cmk_sqlite_disable_lookaside(sqlite3 *db);

#endif
