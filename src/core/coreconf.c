/* The `core` config section. */
#include <stddef.h>

#include "core/core.h"

souk__core_conf_t souk__core_conf;

static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_choices[] = {"logfmt", "json", NULL};

#define K(field) offsetof(souk__core_conf_t, field)
const souk_conf_key_t souk__core_conf_keys[] = {
    {"data_dir", SOUK_CONF_STRING, K(data_dir), "./data", 0, 0, NULL, 0,
     "directory for state files, lock files and the SQLite store"},
    {"log.level", SOUK_CONF_ENUM, K(log_level), "info", 0, 0, level_choices, SOUK_CONF_RUNTIME,
     "lowest level logged"},
    {"log.format", SOUK_CONF_ENUM, K(log_format), "logfmt", 0, 0, format_choices,
     SOUK_CONF_RUNTIME, "log line format"},
    {"log.file", SOUK_CONF_STRING, K(log_file), NULL, 0, 4096, NULL, SOUK_CONF_RUNTIME,
     "also write the log to this file, reopened on SIGHUP (logrotate); stderr then gets only "
     "warnings and errors. Unset: stderr only, except `souk console`, which logs to "
     "<data_dir>/console.log"},
    {"shutdown_grace", SOUK_CONF_DURATION, K(shutdown_grace_ms), "10s", 0, 300000, NULL,
     SOUK_CONF_RUNTIME, "how long SIGTERM waits for in-flight replies before closing"},
    {0},
};

const char *souk_data_dir(void) {
  return souk__core_conf.data_dir ? souk__core_conf.data_dir : "./data";
}
