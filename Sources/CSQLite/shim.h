#ifndef STRATOS_CSQLITE_SHIM_H
#define STRATOS_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro that casts -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type stratos_sqlite_transient(void) { return SQLITE_TRANSIENT; }
// sqlite3_db_config is variadic; Swift cannot call variadic C functions directly.
static inline int stratos_sqlite_defensive(sqlite3 *db) { return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, 0); }
#endif
