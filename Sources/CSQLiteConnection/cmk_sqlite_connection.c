#include "cmk_sqlite_connection.h"

int cmk_sqlite_disable_checkpoint_on_close(sqlite3 *db, int *enabled) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, enabled);
}

int cmk_sqlite_disable_lookaside(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, (void *)0, 0, 0);
}
