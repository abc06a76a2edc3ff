/* Logging: one line per event, logfmt or JSON, with secrets redacted.
 *
 * Every line carries a UTC timestamp, level, component and message.  Secrets
 * registered with souk_log_add_secret() and anything shaped like a Discord
 * bot token or an Authorization / api-key value are replaced by [REDACTED]
 * before the line is written, so a URL or header dump cannot leak them.
 *
 * A line identical to one written less than a second earlier (same level,
 * component and text) is counted, not written; when its second is over one
 * line "<text> ... repeated N times in T s" says how many there were.  Lines
 * go to stderr, and to a file when souk_log_set_file() names one; stderr
 * then gets only warnings and errors.  Thread-safe. */
#ifndef SOUK_LOG_H
#define SOUK_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Log levels, lowest first. */
typedef enum souk_log_level {
  SOUK_LOG_DEBUG,
  SOUK_LOG_INFO,
  SOUK_LOG_WARN,
  SOUK_LOG_ERROR,
  SOUK_LOG_OFF
} souk_log_level_t;

/** Output formats. */
typedef enum souk_log_format { SOUK_LOG_LOGFMT, SOUK_LOG_JSON } souk_log_format_t;

/** Set the minimum level written (default INFO). */
void souk_log_set_level(souk_log_level_t level);
/** Current minimum level. */
souk_log_level_t souk_log_get_level(void);
/** Choose logfmt (default) or JSON lines. */
void souk_log_set_format(souk_log_format_t fmt);
/** Parse "debug", "info", "warn", "error", "off"; returns level or -1. */
int souk_log_level_parse(const char *s);
/** Send lines to fd (default 2, stderr). */
void souk_log_set_fd(int fd);
/** Also write every line to the file at path (appended to, created 0640);
 * while it is set, the stderr fd gets only warnings and errors.  NULL or ""
 * goes back to stderr alone.  Naming the current file again reopens it.
 * Returns 0, or a negative errno (the previous setting stays). */
int souk_log_set_file(const char *path);
/** Reopen the log file under its name (SIGHUP, after logrotate moved it);
 * 0 when no file is set.  Returns 0 or a negative errno. */
int souk_log_reopen(void);
/** The log file's path, or NULL.  Valid until the next set_file. */
const char *souk_log_file(void);
/** Write the pending "repeated N times" lines now (at exit). */
void souk_log_flush(void);
/** Register a secret (copied) that must never appear in a log line.
 * Secrets shorter than 6 bytes are ignored: redacting them would mangle
 * ordinary words. */
void souk_log_add_secret(const char *secret);
/** Forget all registered secrets (tests, config reload). */
void souk_log_clear_secrets(void);
/** Whether text (len bytes) holds a registered secret, or a run shaped
 * like a Discord bot token: for text souk is about to show to people
 * (the Terms of Service an owner publishes), which must never carry one.
 * Thread-safe. */
bool souk_log_has_secret(const char *text, size_t len);

/** Write one line: msg is a printf format.  Newlines inside are escaped. */
void souk_log(souk_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** va_list form of souk_log. */
void souk_vlog(souk_log_level_t level, const char *component, const char *fmt,
               va_list ap);

/** Redact secrets in buf (in place; the text may only shrink or keep its
 * length).  Exposed for tests and for code that stores text it will show. */
size_t souk_log_redact(char *buf, size_t len);

#define SOUK_DEBUG(comp, ...)                                                \
  do {                                                                       \
    if (souk_log_get_level() <= SOUK_LOG_DEBUG)                              \
      souk_log(SOUK_LOG_DEBUG, comp, __VA_ARGS__);                           \
  } while (0)
#define SOUK_INFO(comp, ...) souk_log(SOUK_LOG_INFO, comp, __VA_ARGS__)
#define SOUK_WARN(comp, ...) souk_log(SOUK_LOG_WARN, comp, __VA_ARGS__)
#define SOUK_ERROR(comp, ...) souk_log(SOUK_LOG_ERROR, comp, __VA_ARGS__)

#endif
