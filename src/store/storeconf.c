/* The `store` config section.  Defaults here must match
 * souk_store_conf_defaults() in store.c. */
#include "store/storeconf.h"

#include <stddef.h>
#include <string.h>

souk_store_conf_t souk__store_conf;

static const char *const sync_choices[] = {"normal", "full", NULL};

#define K(field) offsetof(souk_store_conf_t, field)
const souk_conf_key_t souk__store_conf_keys[] = {
    {"url", SOUK_CONF_STRING, K(url), NULL, 0, 1024, NULL, 0,
     "database: unset for <data_dir>/souk.db, sqlite:///path, or postgres://user@host:port/db "
     "(put a password in SOUK_STORE_URL or ~/.pgpass, not in the file)"},
    {"pool_size", SOUK_CONF_INT, K(pool_size), "4", 1, 64, NULL, 0,
     "database connections (one per worker thread is enough)"},
    {"busy_timeout", SOUK_CONF_DURATION, K(busy_timeout_ms), "5s", 0, 600000, NULL, 0,
     "how long a SQLite statement waits for a lock before the transaction is retried"},
    {"backup_before_migrate", SOUK_CONF_BOOL, K(backup_before_migrate), "true", 0, 0, NULL, 0,
     "SQLite: copy the database to <data_dir>/backups before applying migrations"},
    {"migrate", SOUK_CONF_BOOL, K(migrate), "true", 0, 0, NULL, 0,
     "apply pending schema migrations at start (off: run `souk db migrate` yourself)"},
    {"synchronous", SOUK_CONF_ENUM, K(synchronous), "normal", 0, 0, sync_choices, 0,
     "SQLite durability: normal survives a process crash (kill -9); full also survives power "
     "loss at one fsync per commit"},
    {"tx_retries", SOUK_CONF_INT, K(tx_retries), "8", 0, 100, NULL, SOUK_CONF_RUNTIME,
     "times a transaction is run again after busy, serialization failure or a lost connection"},
    {"retry_base", SOUK_CONF_DURATION, K(retry_base_ms), "20ms", 0, 60000, NULL, SOUK_CONF_RUNTIME,
     "first retry backoff; doubles per retry, with jitter"},
    {"retry_max", SOUK_CONF_DURATION, K(retry_max_ms), "2s", 0, 600000, NULL, SOUK_CONF_RUNTIME,
     "longest retry backoff"},
    {"connect_timeout", SOUK_CONF_DURATION, K(connect_timeout_ms), "5s", 1000, 600000, NULL, 0,
     "PostgreSQL connect timeout"},
    {0},
};

/* store.url picks the backend by its scheme (souk_store_open), so a URL
 * that names neither is refused with the rest of the configuration. */
static bool check_url(const char *v, souk_buf_t *expected) {
  if (!strncmp(v, "sqlite://", 9) && v[9]) return true;
  if ((!strncmp(v, "postgres://", 11) && v[11]) || (!strncmp(v, "postgresql://", 13) && v[13]))
    return true;
  souk_buf_puts(expected, "sqlite:///path/to/file.db or postgres://user@host:port/db");
  return false;
}

const souk_conf_check_t souk__store_conf_checks[] = {
    {"url", check_url},
    {0},
};
