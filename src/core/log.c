/* Logging with redaction.  Lines are built in one stack buffer and written
 * with a single write(2), so lines from different threads never interleave. */
#include "souk/log.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "souk/alloc.h"

#define LOG_LINE_MAX 4096
#define LOG_MAX_SECRETS 32
#define REDACTED "[REDACTED]"

static souk_log_level_t g_level = SOUK_LOG_INFO;
static souk_log_format_t g_format = SOUK_LOG_LOGFMT;
static int g_fd = 2;
static char *g_secrets[LOG_MAX_SECRETS];
static size_t g_nsecrets;
static uv_mutex_t g_secrets_mu;
static uv_once_t g_once = UV_ONCE_INIT;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static void log_once(void) { uv_mutex_init(&g_secrets_mu); }

void souk_log_set_level(souk_log_level_t level) { g_level = level; }
souk_log_level_t souk_log_get_level(void) { return g_level; }
void souk_log_set_format(souk_log_format_t fmt) { g_format = fmt; }
void souk_log_set_fd(int fd) { g_fd = fd; }

int souk_log_level_parse(const char *s) {
  if (!s) return -1;
  for (int i = 0; i <= SOUK_LOG_OFF; i++)
    if (strcasecmp(s, level_names[i]) == 0) return i;
  if (strcasecmp(s, "warning") == 0) return SOUK_LOG_WARN;
  return -1;
}

void souk_log_add_secret(const char *secret) {
  if (!secret || strlen(secret) < 6) return;
  uv_once(&g_once, log_once);
  uv_mutex_lock(&g_secrets_mu);
  for (size_t i = 0; i < g_nsecrets; i++)
    if (strcmp(g_secrets[i], secret) == 0) goto out;
  if (g_nsecrets < LOG_MAX_SECRETS) g_secrets[g_nsecrets++] = souk_strdup(secret);
out:
  uv_mutex_unlock(&g_secrets_mu);
}

void souk_log_clear_secrets(void) {
  uv_once(&g_once, log_once);
  uv_mutex_lock(&g_secrets_mu);
  for (size_t i = 0; i < g_nsecrets; i++) souk_free(g_secrets[i]);
  g_nsecrets = 0;
  uv_mutex_unlock(&g_secrets_mu);
}

/* Replace buf[at, at+n) by REDACTED, shifting the tail.  Only ever called
 * where n >= strlen(REDACTED) or where the buffer has room, which the
 * callers guarantee by capping at the original length. */
static size_t splice_redacted(char *buf, size_t len, size_t at, size_t n) {
  size_t rl = sizeof(REDACTED) - 1;
  if (n < rl) {
    /* Never grow the text: a short secret becomes a run of '*'. */
    memset(buf + at, '*', n);
    return len;
  }
  memcpy(buf + at, REDACTED, rl);
  memmove(buf + at + rl, buf + at + n, len - at - n);
  return len - (n - rl);
}

static bool is_b64url(int c) { return isalnum(c) || c == '-' || c == '_'; }

/* A Discord bot token is three base64url segments joined by dots: the user
 * id (>= 18 chars of base64), a timestamp (>= 5) and an HMAC (>= 27). */
static size_t token_shape_at(const char *s, size_t len) {
  size_t i = 0, seg = 0, seglen[3] = {0, 0, 0};
  while (i < len && seg < 3) {
    if (is_b64url((unsigned char)s[i])) {
      seglen[seg]++;
      i++;
    } else if (s[i] == '.' && seg < 2 && seglen[seg] > 0) {
      seg++;
      i++;
    } else {
      break;
    }
  }
  if (seg == 2 && seglen[0] >= 18 && seglen[1] >= 5 && seglen[2] >= 27) return i;
  return 0;
}

/* Keys whose value is a credential: the value after them is redacted up to
 * the next delimiter, whatever it looks like. */
static const char *const secret_keys[] = {
    "authorization: ", "authorization=", "\"authorization\":\"", "token=",
    "api_key=", "apikey=", "apiKey=", "x-api-key: ", "\"token\":\"",
    "access_token=", "key=", "APCA-API-SECRET-KEY: ", "APCA-API-KEY-ID: ",
    "bot ", "bearer ",
};

size_t souk_log_redact(char *buf, size_t len) {
  uv_once(&g_once, log_once);
  /* Registered secrets first: exact matches anywhere. */
  uv_mutex_lock(&g_secrets_mu);
  for (size_t k = 0; k < g_nsecrets; k++) {
    const char *sec = g_secrets[k];
    size_t sl = strlen(sec);
    for (size_t i = 0; i + sl <= len;) {
      if (memcmp(buf + i, sec, sl) == 0) {
        len = splice_redacted(buf, len, i, sl);
        i += sizeof(REDACTED) - 1 <= sl ? sizeof(REDACTED) - 1 : sl;
      } else {
        i++;
      }
    }
  }
  uv_mutex_unlock(&g_secrets_mu);
  /* Credential-bearing keys: redact their value. */
  for (size_t i = 0; i < len; i++) {
    for (size_t k = 0; k < sizeof(secret_keys) / sizeof(*secret_keys); k++) {
      size_t kl = strlen(secret_keys[k]);
      if (i + kl > len || strncasecmp(buf + i, secret_keys[k], kl) != 0) continue;
      /* "key=" must start a parameter, not end "monkey=". */
      if (i > 0 && isalnum((unsigned char)buf[i - 1]) && secret_keys[k][0] != '"')
        continue;
      size_t v = i + kl, e = v;
      while (e < len && buf[e] != '&' && buf[e] != '"' && buf[e] != '\'' &&
             buf[e] != ' ' && buf[e] != ',' && buf[e] != '\n' && buf[e] != '\r' &&
             buf[e] != '}' && buf[e] != ';')
        e++;
      /* "Bot x" / "Bearer x" in prose: only redact a credential-looking run. */
      if ((secret_keys[k][0] == 'b') && e - v < 20) continue;
      if (e - v >= 4 && !(e - v == sizeof(REDACTED) - 1 &&
                          memcmp(buf + v, REDACTED, e - v) == 0)) {
        len = splice_redacted(buf, len, v, e - v);
      }
      break;
    }
    size_t tl = (i == 0 || !is_b64url((unsigned char)buf[i - 1]))
                    ? token_shape_at(buf + i, len - i)
                    : 0;
    if (tl) len = splice_redacted(buf, len, i, tl);
  }
  return len;
}

static size_t append(char *buf, size_t pos, size_t cap, const char *s, size_t n) {
  if (pos >= cap) return pos;
  if (n > cap - pos) n = cap - pos;
  memcpy(buf + pos, s, n);
  return pos + n;
}

/* Escape msg for a double-quoted logfmt or JSON string. */
static size_t append_quoted(char *buf, size_t pos, size_t cap, const char *s,
                            size_t n, bool json) {
  pos = append(buf, pos, cap, "\"", 1);
  for (size_t i = 0; i < n && pos + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      buf[pos++] = '\\';
      buf[pos++] = (char)c;
    } else if (c == '\n') {
      buf[pos++] = '\\';
      buf[pos++] = 'n';
    } else if (c == '\r') {
      buf[pos++] = '\\';
      buf[pos++] = 'r';
    } else if (c == '\t') {
      buf[pos++] = '\\';
      buf[pos++] = 't';
    } else if (c < 0x20 || c == 0x7f) {
      pos += (size_t)snprintf(buf + pos, cap - pos, json ? "\\u%04x" : "\\x%02x", c);
    } else {
      buf[pos++] = (char)c;
    }
  }
  return append(buf, pos, cap, "\"", 1);
}

void souk_vlog(souk_log_level_t level, const char *component, const char *fmt,
               va_list ap) {
  if (level < g_level || level >= SOUK_LOG_OFF) return;
  char msg[LOG_LINE_MAX];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (n < 0) return;
  size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
  mlen = souk_log_redact(msg, mlen);

  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[96];
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(tv.tv_usec / 1000));

  char line[LOG_LINE_MAX + 256];
  size_t cap = sizeof line - 2, pos = 0;
  const char *comp = component ? component : "souk";
  if (g_format == SOUK_LOG_JSON) {
    pos += (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":", ts,
                            level_names[level]);
    pos = append_quoted(line, pos, cap, comp, strlen(comp), true);
    pos = append(line, pos, cap, ",\"msg\":", 7);
    pos = append_quoted(line, pos, cap, msg, mlen, true);
    pos = append(line, pos, cap, "}", 1);
  } else {
    pos += (size_t)snprintf(line, cap, "ts=%s level=%s comp=%s msg=", ts,
                            level_names[level], comp);
    pos = append_quoted(line, pos, cap, msg, mlen, false);
  }
  if (pos > cap) pos = cap;
  line[pos++] = '\n';
  ssize_t w = write(g_fd, line, pos);
  (void)w;
}

void souk_log(souk_log_level_t level, const char *component, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  souk_vlog(level, component, fmt, ap);
  va_end(ap);
}
