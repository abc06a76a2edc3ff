/* The configuration system: defaults < YAML file < environment < run-time
 * admin changes, validated as a whole.
 *
 * Every section's key table (include/souk/conf.h) is parsed and validated
 * together, and every problem is reported at once with the file and line
 * (or environment variable), the dotted key, what was expected and what was
 * found.  Values are written into each section's struct only when all of
 * them are valid, so a failed load or reload never leaves a half-applied
 * configuration.
 *
 * Threads: every function here runs on the loop thread (or before the loop
 * starts).  Other threads must copy the values they need; a reload or an
 * admin change frees the strings and lists it replaces.
 *
 * Ownership: strings and lists written into the sections' structs are owned
 * by the config and stay valid until the next reload or set() that changes
 * that key, or souk__config_free(). */
#ifndef SOUK_CORE_CONFIG_H
#define SOUK_CORE_CONFIG_H

#include "souk/buf.h"
#include "souk/conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/** The file read when no -c PATH is given; missing is fine. */
#define SOUK_CONFIG_DEFAULT_PATH "souk.yaml"

/** One problem.  file is the config file, a .env file, "env NAME" for an
 * environment variable, or NULL; line is 1-based, 0 when there is none;
 * key is the dotted "section.key" or NULL.  msg never holds a secret. */
typedef struct souk__conf_diag {
  char *file;
  int line;
  char *key;
  char *msg;
  bool warning;
} souk__conf_diag_t;

/** Every problem found, in the order found.  Zero-initialise; functions
 * append to it; release with souk__conf_report_free().  nerr counts the
 * entries that are errors (the rest are warnings). */
typedef struct souk__conf_report {
  souk__conf_diag_t *v;
  size_t n;
  size_t nerr;
} souk__conf_report_t;

/** Load the configuration: defaults, then the YAML file at path, then the
 * environment (after loading .env from the current directory and, if it
 * differs, from the config file's directory, without overriding variables
 * already set).  A missing file is fine unless path_explicit (a -c PATH);
 * path NULL reads no file (defaults and environment only).  Values are
 * applied only if everything is valid; an earlier load's values are
 * replaced and freed.  Diagnostics are appended to rep (NULL discards
 * them).  Returns 0 (warnings possible) or SOUK_ECONFIG (rep has >= 1
 * error and nothing was changed). */
int souk__config_load(const char *path, bool path_explicit, const souk_conf_section_t *secs,
                      size_t nsecs, souk__conf_report_t *rep);

/** souk__config_load() from len bytes of YAML text in memory, shown as
 * name in diagnostics; no .env file is read.  For tests and fuzzing. */
int souk__config_load_mem(const char *name, const char *text, size_t len,
                          const souk_conf_section_t *secs, size_t nsecs, souk__conf_report_t *rep);

/** Re-read the .env files, the YAML file and the environment (SIGHUP).  If
 * everything validates, keys flagged SOUK_CONF_RUNTIME whose value changed
 * are applied together; other changed keys are left alone and listed as
 * needing a restart; keys set by souk__config_set() keep the admin's value.
 * changes (may be NULL) receives one line without newlines, entries
 * separated by "; ", e.g. "discord.presence.status: online -> idle;
 * discord.shards.count: 0 -> 4 (needs a restart)"; secrets show only
 * "changed".  Returns 0, or SOUK_ECONFIG with nothing applied. */
int souk__config_reload(const char *path, bool path_explicit, const souk_conf_section_t *secs,
                        size_t nsecs, souk__conf_report_t *rep, souk_buf_t *changes);

/** An admin's run-time change of one key, "section.key" = value (text as
 * in the environment: lists comma-separated, "" unsets a string, id or
 * list).  Only SOUK_CONF_RUNTIME keys may change; the change beats the file
 * and environment until restart and is logged, not persisted.  On failure
 * err (errlen bytes, may be 0) receives a sentence for the admin, never a
 * secret.  Returns 0, SOUK_ENOTFOUND (no such key), SOUK_EFORBIDDEN (not
 * changeable at run time) or SOUK_EINVAL (bad value). */
int souk__config_set(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                     const char *value, char *err, size_t errlen);

/** Append the current value of "section.key" to out as text: the form the
 * dump shows ("30s", "64KB", "\"text\"", "[1, 2]", "unset"); a secret
 * shows only "set" or "unset".  Returns 0 or SOUK_ENOTFOUND. */
int souk__config_get_text(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                          souk_buf_t *out);

/** The current value of "section.key" as text that the same key reads back
 * (strings raw, "" when unset; lists comma-separated; "30s", "64KB",
 * "true", an enum's name), for settings whose default is a bot-wide key.
 * *from_default (may be NULL) says whether it is the key's built-in
 * default rather than the file's, the environment's or an admin's.
 * Returns 0, SOUK_ENOTFOUND, or SOUK_EFORBIDDEN for a secret. */
int souk__config_value_text(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                            souk_buf_t *out, bool *from_default);

/** Append s[0..n) as the messages quote what they found: in single
 * quotes, control characters escaped, URL passwords as ***, cut after 60
 * bytes with "...". */
void souk__conf_quote(souk_buf_t *b, const char *s, size_t n);

/** Check text as a value of k with exactly the file's rules and messages,
 * storing nothing.  On success the scalar goes to *i (INT, DURATION and
 * SIZE; BOOL as 0/1; ENUM's index) or *id (SNOWFLAKE); either may be NULL.
 * Returns true, or false with "expected ..., found ..." appended to msg. */
bool souk__conf_check_value(const souk_conf_key_t *k, const char *text, int64_t *i, uint64_t *id,
                            souk_buf_t *msg);

/** Where the value in effect of "section.key" came from, for a problem
 * that involves several keys: "FILE:LINE" or "env NAME" in file (a
 * diagnostic's file field, line 0), or nothing appended for a default.
 * Returns 0 or SOUK_ENOTFOUND. */
int souk__config_source(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                        souk_buf_t *file);

/** Append every key as "section.key = value (source)\n", the source being
 * "default", "FILE:LINE", "env NAME" or "admin"; a secret shows as
 * "set (from SOUK_DISCORD_TOKEN)" or "unset". */
void souk__config_dump(const souk_conf_section_t *secs, size_t nsecs, souk_buf_t *out);

/** Append an error to rep for every SOUK_CONF_REQUIRED key that is unset,
 * for the commands that need them.  Returns 0 or SOUK_ECONFIG. */
int souk__config_require(const souk_conf_section_t *secs, size_t nsecs, souk__conf_report_t *rep);

/** Free the strings and lists the config owns in these sections (the
 * fields become NULL / empty) and forget their sources. */
void souk__config_free(const souk_conf_section_t *secs, size_t nsecs);

/** Append a problem to rep that the key tables cannot find by themselves
 * (a key that one command needs, such as the token for `run`).  file may be
 * NULL, line 0 when there is none; msg is a printf format. */
void souk__conf_report_add(souk__conf_report_t *rep, bool warning, const char *file, int line,
                           const char *key, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/** Append one diagnostic as a line without newline:
 * "FILE:LINE: section.key: msg", "FILE:LINE: warning: section.key: msg",
 * "env NAME: section.key: msg" (parts that are absent are left out). */
void souk__conf_diag_format(const souk__conf_diag_t *d, souk_buf_t *out);
/** Write every diagnostic of rep to f, one a line. */
void souk__conf_report_print(const souk__conf_report_t *rep, FILE *f);
/** Log every diagnostic of rep (errors at ERROR, warnings at WARN). */
void souk__conf_report_log(const souk__conf_report_t *rep);
/** Free the diagnostics and leave rep empty. */
void souk__conf_report_free(souk__conf_report_t *rep);

#endif
