/* Configuration tables.
 *
 * Every module (and each core component) declares its settings in a table of
 * souk_conf_key_t ending in a zero entry, plus a struct the values land in.
 * The core parses and validates all sections together, before any network
 * I/O, from defaults < YAML file < environment (SOUK_<SECTION>_<KEY>, dots
 * and dashes as underscores, upper case) < run-time admin changes, and
 * reports every problem at once with file:line, key, what was expected and
 * what was found. */
#ifndef SOUK_CONF_H
#define SOUK_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Setting types and the C type stored at offset. */
typedef enum souk_conf_type {
  SOUK_CONF_STRING,         /* char * (owned by the config; NULL if unset or ""); max > 0
                               limits the length in characters */
  SOUK_CONF_INT,            /* int64_t, decimal, bounded by [min, max] */
  SOUK_CONF_BOOL,           /* bool: true/false/yes/no/on/off/1/0 */
  SOUK_CONF_ENUM,           /* an int-sized C enum: index into choices (-1 if unset and no
                               default); see SOUK_CONF_ENUM_CHOICES */
  SOUK_CONF_DURATION,       /* int64_t milliseconds: "250ms", "30s", "5m", "4h", "1d",
                               "1h30m"; a bare integer means seconds ("30" is 30s) */
  SOUK_CONF_SIZE,           /* int64_t bytes: "512", "64KB", "10MB", "2GB" (1024-based) */
  SOUK_CONF_SNOWFLAKE,      /* uint64_t, 0 if unset; 17-20 digits */
  SOUK_CONF_SNOWFLAKE_LIST, /* souk_conf_ids_t; YAML sequence or comma list */
  SOUK_CONF_STRING_LIST,    /* souk_conf_strs_t; YAML sequence or comma list */
  SOUK_CONF_URL,            /* char *; must parse as scheme://host[:port][/path] */
  SOUK_CONF_TOKEN,          /* char *; a Discord bot token's shape */
  SOUK_CONF_DOUBLE,         /* double, bounded by [min, max] (non-money only) */
} souk_conf_type_t;

/** Declare the choices of a SOUK_CONF_ENUM key from a C enum, so the
 * field can be of that enum type and code compares it with the enum's
 * names, never with bare numbers:
 *
 *   typedef enum my_mode { MY_MODE_FAST, MY_MODE_SAFE } my_mode_t;
 *   SOUK_CONF_ENUM_CHOICES(my_mode_t, my_mode_choices, MY_MODE_SAFE,
 *                          [MY_MODE_FAST] = "fast", [MY_MODE_SAFE] = "safe");
 *
 * The list is NULL-terminated after last (the highest value), and the
 * build fails if the enum is not the size of the int the config writes. */
#define SOUK_CONF_ENUM_CHOICES(type, name, last, ...)                                             \
  _Static_assert(sizeof(type) == sizeof(int), #type " must be int-sized for SOUK_CONF_ENUM");    \
  static const char *const name[(last) + 2] = {__VA_ARGS__}

/** A list of ids; the array is owned by the config. */
typedef struct souk_conf_ids {
  uint64_t *ids;
  size_t n;
} souk_conf_ids_t;

/** A list of strings; owned by the config. */
typedef struct souk_conf_strs {
  char **v;
  size_t n;
} souk_conf_strs_t;

/** Flags for a key. */
enum {
  SOUK_CONF_SECRET = 1u << 0,   /* never logged; warn if it is in the file */
  SOUK_CONF_RUNTIME = 1u << 1,  /* may change at run time (SIGHUP, admin) */
  SOUK_CONF_REQUIRED = 1u << 2, /* must be set (for the commands that need it) */
  /** An alias: an INT key that is another name for the key in its choices
   * slot, written SOUK_CONF_ALIAS_OF("memguard.soft_limit", 1048576): that
   * key (INT, SIZE or DURATION) in units of the scale.  One value, one
   * source of truth: setting the alias sets the other key (to value x
   * scale), setting both is an error, and check-config shows the alias as
   * the other key's.  The alias's own field receives the value as given. */
  SOUK_CONF_ALIAS = 1u << 3,
};

/** The choices slot of a SOUK_CONF_ALIAS key: the key it names and the
 * scale (a decimal integer literal). */
#define SOUK_CONF_ALIAS_OF(target, scale) ((const char *const[]){target, #scale, NULL})

/** One setting.  name may be dotted ("log.level") for nested YAML maps. */
typedef struct souk_conf_key {
  const char *name;
  souk_conf_type_t type;
  size_t offset;            /* offsetof(struct, field) */
  const char *def;          /* default, as text; NULL for none */
  int64_t min, max;         /* bounds for INT/DURATION (ms)/SIZE/DOUBLE; min always
                               applies, max 0 = no upper bound */
  const char *const *choices; /* ENUM: NULL-terminated names */
  unsigned flags;
  const char *help;         /* one line, shown by check-config and the README */
} souk_conf_key_t;

struct souk_buf;

/** A key's own check of a value that already has the key's type, for what
 * the type cannot say (an IP address, a dollar amount, a URL's scheme).
 * Returns true, or false after appending to expected what a good value
 * looks like, as a phrase ("an IPv4 or IPv6 address such as 127.0.0.1"):
 * the config then reports "expected <phrase>, found '<value>'" with the
 * file and line, like a value of the wrong type.  It runs for the file, the
 * environment, SIGHUP and admin changes, before anything starts, and never
 * for an unset value.  It must not keep the pointer nor have side effects. */
typedef bool (*souk_conf_check_cb)(const char *value, struct souk_buf *expected);

/** A check for one key of a section, by the key's name ("bind",
 * "start_cash"); tables end with a zero entry. */
typedef struct souk_conf_check {
  const char *key;
  souk_conf_check_cb fn;
} souk_conf_check_t;

/** A section: a top-level YAML key and where its values go. */
typedef struct souk_conf_section {
  const char *name;             /* "discord", "log", a module's name */
  const souk_conf_key_t *keys;  /* ends with a zero entry */
  void *data;                   /* struct the offsets refer to */
  const souk_conf_check_t *checks; /* optional checks of single keys; may be NULL */
} souk_conf_section_t;

/** Re-read the configuration (file, environment, .env) and apply the keys
 * that may change at run time, as SIGHUP does; a readable list of what
 * changed, or the problems found, is appended to out (may be NULL).
 * Returns 0, SOUK_ECONFIG (nothing applied) or SOUK_ENOTSUP (not in this
 * process). */
int souk_conf_reload(struct souk_buf *out);
/** Change one key that may change at run time (SOUK_CONF_RUNTIME), as
 * "section.key", with the file's rules: lists comma-separated, "" unsets.
 * The change is logged with by_user and applied at once like a reload;
 * it lasts until restart (the file is not written).  On failure err
 * (errcap bytes) gets a sentence for the admin.  0, SOUK_ENOTFOUND (no
 * such key), SOUK_EFORBIDDEN (not changeable at run time), SOUK_EINVAL
 * (bad value) or SOUK_ENOTSUP (not in this process). */
int souk_conf_set(const char *key, const char *value, uint64_t by_user, char *err, size_t errcap);
/** Where a souk_conf_set() change goes beyond this process: 0 nowhere (one
 * process, no cache.url), 1 every process of the bot (shared through
 * Redis, which is up), -1 every process once Redis is back (it is
 * unreachable now: until then only this one has it). */
int souk_conf_shared(void);

/** The process's data directory (core.data_dir, "./data" by default): a
 * module keeps its files in a subdirectory named after itself.  Valid
 * while the configuration is loaded; never NULL. */
const char *souk_data_dir(void);

#endif
