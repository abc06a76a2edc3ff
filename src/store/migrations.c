/* Versioned migrations, oldest first.
 *
 * Rules: never edit a released migration, only append; write portable SQL
 * where the backends agree and give sql_pg where they do not (BLOB vs
 * BYTEA, AUTOINCREMENT vs identity columns).  Integers are BIGINT on both so
 * values read back as int64 everywhere.  schema_version itself is created by
 * the runner before the first migration. */
#include "store/store_int.h"

const souk__migration_t souk__migrations[] = {
    {1, "kv and idempotency",
     "CREATE TABLE kv ("
     " namespace TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " value BLOB,"
     " updated_at BIGINT NOT NULL,"
     " PRIMARY KEY (namespace, key));"
     "CREATE TABLE idempotency ("
     " key TEXT PRIMARY KEY,"
     " created_at BIGINT NOT NULL);"
     "CREATE INDEX idempotency_created ON idempotency (created_at);",
     "CREATE TABLE kv ("
     " namespace TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " value BYTEA,"
     " updated_at BIGINT NOT NULL,"
     " PRIMARY KEY (namespace, key));"
     "CREATE TABLE idempotency ("
     " key TEXT PRIMARY KEY,"
     " created_at BIGINT NOT NULL);"
     "CREATE INDEX idempotency_created ON idempotency (created_at);"},
};

const int souk__migrations_n = (int)(sizeof souk__migrations / sizeof *souk__migrations);
