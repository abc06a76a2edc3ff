/* Logging with redaction.  Lines are built in one stack buffer and written
 * with a single write(2), so lines from different threads never interleave.
 *
 * Floods: a line identical to one written less than a second ago (same
 * level, component and text) is counted instead of written, and when its
 * second is over one line says "<text> ... repeated N times in T s".  A few
 * lines are followed at once, so two floods that alternate are both
 * coalesced.  300 half-open connections closing together thus cost two
 * lines, not 300, whichever component writes them.
 *
 * Sinks: stderr (or the fd given to souk_log_set_fd), and a file when one
 * is set; while a file is set, stderr gets only warnings and errors. */
#include "core/log.h"
#include "souk/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "souk/alloc.h"
#include "souk/buf.h"

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

/* Coalescing of repeated lines (see the top of the file).  REPEAT_SLOTS
 * lines are followed; each slot's window starts at its first line (or at
 * the last summary) and lasts REPEAT_WINDOW_MS. */
#define REPEAT_SLOTS 8
#define REPEAT_WINDOW_MS 1000

typedef struct repeat {
  bool used;
  souk_log_level_t level;
  uint64_t hash;
  char *comp, *msg; /* copies; msg is the redacted text */
  size_t mlen;
  uint64_t start_ms, last_ms; /* window start; time of the last repeat */
  uint64_t count;             /* repeats counted in this window, not written */
} repeat_t;

/* The sinks and the repeat table, guarded by g_mu: lines come from any
 * thread (the loop and the worker pool). */
static uv_mutex_t g_mu;
static int g_file_fd = -1;
static char *g_file_path;
static repeat_t g_rep[REPEAT_SLOTS];
static bool g_coalesce = true;
static uint64_t (*g_clock)(void);
static uv_timer_t g_flusher;
static bool g_flusher_on;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static void log_once(void) {
  uv_mutex_init(&g_secrets_mu);
  uv_mutex_init(&g_mu);
}

static uint64_t clock_ms(void) { return g_clock ? g_clock() : uv_hrtime() / 1000000u; }

void souk_log_set_level(souk_log_level_t level) { g_level = level; }
souk_log_level_t souk_log_get_level(void) { return g_level; }
void souk_log_set_format(souk_log_format_t fmt) { g_format = fmt; }
void souk_log_set_fd(int fd) { g_fd = fd; }

int souk_log_set_file(const char *path) {
  uv_once(&g_once, log_once);
  int fd = -1;
  if (path && *path) {
    /* O_APPEND: lines from this and other processes land whole at the end,
     * and logrotate's copytruncate works as well as a reopen. */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
  }
  uv_mutex_lock(&g_mu);
  int old = g_file_fd;
  g_file_fd = fd;
  if (!path || !*path) {
    souk_free(g_file_path);
    g_file_path = NULL;
  } else if (!g_file_path || strcmp(g_file_path, path) != 0) {
    souk_free(g_file_path);
    g_file_path = souk_strdup(path);
  }
  uv_mutex_unlock(&g_mu);
  if (old >= 0) close(old);
  return 0;
}

int souk_log_reopen(void) {
  uv_once(&g_once, log_once);
  uv_mutex_lock(&g_mu);
  char *path = g_file_path ? souk_strdup(g_file_path) : NULL;
  uv_mutex_unlock(&g_mu);
  if (!path) return 0;
  int rc = souk_log_set_file(path);
  souk_free(path);
  return rc;
}

const char *souk_log_file(void) { return g_file_path; }

void souk__log_set_clock(uint64_t (*now_ms)(void)) { g_clock = now_ms; }
void souk__log_set_coalesce(bool on) { g_coalesce = on; }

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
 * the next delimiter, whatever it looks like.  Matching ignores case; a key
 * must not continue a word ("key=" in "monkey=" is not a key).  Quoted JSON
 * keys are handled by json_secret_value(). */
static const char *const secret_keys[] = {
    "authorization: ", "authorization=", "proxy-authorization: ", "token=",
    "api_key=", "apikey=", "api-key: ", "x-api-key: ", "access_token=", "refresh_token=",
    "client_secret=", "password=", "key=", "x-finnhub-token: ", "APCA-API-SECRET-KEY: ",
    "APCA-API-KEY-ID: ", "kc-api-passphrase: ", "kc-api-sign: ", "bot ", "bearer ",
};

/* JSON object keys whose string value is a credential. */
static const char *const secret_json_keys[] = {
    "token",   "authorization", "access_token", "refresh_token", "api_key", "apikey",
    "api-key", "password",      "client_secret", "secret",
};

/* Length of an HTTP authorization scheme word ("Bot ", "Bearer ", "Basic ")
 * at s, so that the credential after it is what gets redacted. */
static size_t auth_scheme_len(const char *s, size_t n) {
  static const char *const schemes[] = {"bot ", "bearer ", "basic ", "token "};
  for (size_t k = 0; k < sizeof schemes / sizeof *schemes; k++) {
    size_t l = strlen(schemes[k]);
    if (n >= l && strncasecmp(s, schemes[k], l) == 0) return l;
  }
  return 0;
}

static bool is_redacted_at(const char *s, size_t n) {
  size_t rl = sizeof(REDACTED) - 1;
  return n >= rl && memcmp(s, REDACTED, rl) == 0;
}

/* If buf[i] opens a quoted JSON key from secret_json_keys followed by
 * ':' and a string (any whitespace allowed, as pretty-printers write it),
 * set [*v, *e) to the string's content and return true. */
static bool json_secret_value(const char *buf, size_t len, size_t i, size_t *v, size_t *e) {
  if (buf[i] != '"') return false;
  size_t ks = i + 1, ke = ks;
  while (ke < len && ke - ks <= 32 && buf[ke] != '"') ke++;
  if (ke >= len || buf[ke] != '"') return false;
  bool hit = false;
  for (size_t k = 0; k < sizeof secret_json_keys / sizeof *secret_json_keys && !hit; k++)
    hit = strlen(secret_json_keys[k]) == ke - ks &&
          strncasecmp(buf + ks, secret_json_keys[k], ke - ks) == 0;
  if (!hit) return false;
  size_t p = ke + 1;
  while (p < len && (buf[p] == ' ' || buf[p] == '\t')) p++;
  if (p >= len || buf[p] != ':') return false;
  p++;
  while (p < len && (buf[p] == ' ' || buf[p] == '\t')) p++;
  if (p >= len || buf[p] != '"') return false;
  *v = ++p;
  while (p < len && buf[p] != '"' && buf[p] != '\n') p += (buf[p] == '\\' && p + 1 < len) ? 2 : 1;
  *e = p < len ? p : len;
  return true;
}

/* Password in a URL's userinfo: scheme://user:PASSWORD@host.  On a match
 * at buf[i] ("://"), set [*v, *e) to the password. */
static bool url_password(const char *buf, size_t len, size_t i, size_t *v, size_t *e) {
  if (i + 3 > len || memcmp(buf + i, "://", 3) != 0) return false;
  size_t p = i + 3, colon = 0;
  for (; p < len; p++) {
    char c = buf[p];
    if (c == '@') break;
    if (c == '/' || c == ' ' || c == '\n' || c == '"' || c == '\'' || c == '?' || c == '#')
      return false;
    if (c == ':' && !colon) colon = p;
  }
  if (p >= len || !colon || colon + 1 >= p) return false;
  *v = colon + 1;
  *e = p;
  return true;
}

bool souk_log_has_secret(const char *text, size_t len) {
  uv_once(&g_once, log_once);
  if (!text) return false;
  bool found = false;
  uv_mutex_lock(&g_secrets_mu);
  for (size_t k = 0; k < g_nsecrets && !found; k++) {
    size_t sl = strlen(g_secrets[k]);
    for (size_t i = 0; i + sl <= len && !found; i++)
      found = memcmp(text + i, g_secrets[k], sl) == 0;
  }
  uv_mutex_unlock(&g_secrets_mu);
  for (size_t i = 0; i < len && !found; i++) {
    bool starts = i == 0 || !is_b64url((unsigned char)text[i - 1]);
    found = starts && token_shape_at(text + i, len - i) > 0;
  }
  return found;
}

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
    size_t v, e;
    if (json_secret_value(buf, len, i, &v, &e) || url_password(buf, len, i, &v, &e)) {
      v += auth_scheme_len(buf + v, e - v);
      if (e > v && !is_redacted_at(buf + v, e - v)) len = splice_redacted(buf, len, v, e - v);
      continue;
    }
    for (size_t k = 0; k < sizeof(secret_keys) / sizeof(*secret_keys); k++) {
      const char *key = secret_keys[k];
      size_t kl = strlen(key);
      if (i + kl > len || strncasecmp(buf + i, key, kl) != 0) continue;
      /* "key=" must start a parameter, not end "monkey=". */
      if (i > 0 && isalnum((unsigned char)buf[i - 1])) continue;
      v = i + kl;
      bool bare = key[0] == 'b' || key[0] == 'B'; /* "Bot x" / "Bearer x" */
      /* "Authorization: Bot <token>": keep the scheme, redact what follows
       * it, however short. */
      size_t scheme = strncasecmp(key, "authorization", 13) == 0 ||
                              strncasecmp(key, "proxy-authorization", 19) == 0
                          ? auth_scheme_len(buf + v, len - v)
                          : 0;
      v += scheme;
      e = v;
      while (e < len && buf[e] != '&' && buf[e] != '"' && buf[e] != '\'' && buf[e] != ' ' &&
             buf[e] != ',' && buf[e] != '\n' && buf[e] != '\r' && buf[e] != '}' &&
             buf[e] != ';')
        e++;
      /* "Bot x" / "Bearer x" in prose: only redact a credential-looking run. */
      if (bare && e - v < 20) continue;
      if ((e - v >= 4 || (scheme && e > v)) && !is_redacted_at(buf + v, e - v))
        len = splice_redacted(buf, len, v, e - v);
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

/* Escape msg for a double-quoted logfmt or JSON string.  Invalid UTF-8
 * (raw bytes from the network, a message cut mid-character) becomes
 * U+FFFD so that every line is valid UTF-8 and, in JSON mode, valid JSON. */
static size_t append_quoted(char *buf, size_t pos, size_t cap, const char *s,
                            size_t n, bool json) {
  pos = append(buf, pos, cap, "\"", 1);
  for (size_t i = 0; i < n && pos + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      size_t l = souk_utf8_seq((const unsigned char *)s + i, n - i);
      if (l == 0) {
        memcpy(buf + pos, "\xef\xbf\xbd", 3);
        pos += 3;
      } else {
        memcpy(buf + pos, s + i, l);
        pos += l;
        i += l - 1;
      }
    } else if (c == '"' || c == '\\') {
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

static void emit_coalesced(souk_log_level_t level, const char *comp, const char *msg,
                           size_t mlen);

void souk_vlog(souk_log_level_t level, const char *component, const char *fmt,
               va_list ap) {
  if (level < g_level || level >= SOUK_LOG_OFF) return;
  char msg[LOG_LINE_MAX];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  size_t mlen;
  if (n < 0) {
    va_end(ap2);
    return;
  } else if ((size_t)n < sizeof msg) {
    mlen = souk_log_redact(msg, (size_t)n);
  } else {
    /* Too long for one line: redact the whole message before cutting it,
     * or a secret that straddles the cut would leak its first bytes. */
    char *full = souk_malloc((size_t)n + 1);
    vsnprintf(full, (size_t)n + 1, fmt, ap2);
    mlen = souk_log_redact(full, (size_t)n);
    if (mlen > sizeof msg - 1) mlen = sizeof msg - 1;
    memcpy(msg, full, mlen);
    souk_free(full);
  }
  va_end(ap2);

  emit_coalesced(level, component ? component : "souk", msg, mlen);
}

/* Format one line and write it to the sinks.  Called with g_mu held. */
static void write_line(souk_log_level_t level, const char *comp, const char *msg, size_t mlen) {
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
  ssize_t w;
  if (g_file_fd >= 0) w = write(g_file_fd, line, pos);
  /* With a log file, stderr keeps what an operator must see at once. */
  if (g_file_fd < 0 || level >= SOUK_LOG_WARN) w = write(g_fd, line, pos);
  (void)w;
}

static uint64_t fnv1a(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211u;
  }
  return h;
}

static void slot_clear(repeat_t *r) {
  souk_free(r->comp);
  souk_free(r->msg);
  memset(r, 0, sizeof *r);
}

/* "<text> ... repeated N times in T s" for a slot with repeats. */
static void write_summary(repeat_t *r) {
  char msg[LOG_LINE_MAX];
  uint64_t secs = (r->last_ms - r->start_ms + 999) / 1000;
  if (secs == 0) secs = 1;
  int n = snprintf(msg, sizeof msg, "%.*s \xE2\x80\xA6 repeated %llu time%s in %llu s",
                   (int)(r->mlen > sizeof msg - 64 ? sizeof msg - 64 : r->mlen), r->msg,
                   (unsigned long long)r->count, r->count == 1 ? "" : "s",
                   (unsigned long long)secs);
  write_line(r->level, r->comp, msg, n < 0 ? 0 : (size_t)n >= sizeof msg ? sizeof msg - 1 : (size_t)n);
}

/* Close the windows that are over at now: a slot that saw repeats writes
 * its summary and watches a new window (the flood may go on); one that saw
 * none is forgotten.  Called with g_mu held. */
static void flush_expired(uint64_t now, bool all) {
  for (int i = 0; i < REPEAT_SLOTS; i++) {
    repeat_t *r = &g_rep[i];
    if (!r->used || (!all && now - r->start_ms < REPEAT_WINDOW_MS)) continue;
    if (r->count == 0 || all) {
      if (r->count) write_summary(r);
      slot_clear(r);
      continue;
    }
    write_summary(r);
    r->count = 0;
    r->start_ms = r->last_ms = now;
  }
}

static void emit_coalesced(souk_log_level_t level, const char *comp, const char *msg,
                           size_t mlen) {
  uv_once(&g_once, log_once);
  uv_mutex_lock(&g_mu);
  if (!g_coalesce) {
    write_line(level, comp, msg, mlen);
    uv_mutex_unlock(&g_mu);
    return;
  }
  uint64_t now = clock_ms();
  flush_expired(now, false);
  size_t clen = strlen(comp);
  uint64_t h = fnv1a(msg, mlen, fnv1a(comp, clen, 14695981039346656037u ^ (uint64_t)level));
  repeat_t *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < REPEAT_SLOTS; i++) {
    repeat_t *r = &g_rep[i];
    if (!r->used) {
      if (!free_slot) free_slot = r;
      continue;
    }
    if (r->hash == h && r->level == level && r->mlen == mlen && !memcmp(r->msg, msg, mlen) &&
        !strcmp(r->comp, comp)) {
      r->count++;
      r->last_ms = now;
      uv_mutex_unlock(&g_mu);
      return;
    }
    if (!oldest || r->start_ms < oldest->start_ms) oldest = r;
  }
  repeat_t *r = free_slot;
  if (!r) {
    /* Every slot busy: the oldest makes room, saying what it counted. */
    r = oldest;
    if (r->count) write_summary(r);
    slot_clear(r);
  }
  write_line(level, comp, msg, mlen);
  r->used = true;
  r->level = level;
  r->hash = h;
  r->comp = souk_strdup(comp);
  r->msg = souk_memdup0(msg, mlen);
  r->mlen = mlen;
  r->start_ms = r->last_ms = now;
  uv_mutex_unlock(&g_mu);
}

void souk_log_flush(void) {
  uv_once(&g_once, log_once);
  uv_mutex_lock(&g_mu);
  flush_expired(clock_ms(), true);
  uv_mutex_unlock(&g_mu);
}

void souk__log_tick(void) {
  uv_once(&g_once, log_once);
  uv_mutex_lock(&g_mu);
  flush_expired(clock_ms(), false);
  uv_mutex_unlock(&g_mu);
}

static void flusher_cb(uv_timer_t *t) {
  (void)t;
  souk__log_tick();
}

void souk__log_flusher_start(uv_loop_t *loop) {
  if (g_flusher_on) return;
  uv_timer_init(loop, &g_flusher);
  /* It must not keep an otherwise finished loop alive. */
  uv_unref((uv_handle_t *)&g_flusher);
  uv_timer_start(&g_flusher, flusher_cb, REPEAT_WINDOW_MS, REPEAT_WINDOW_MS);
  g_flusher_on = true;
}

void souk__log_flusher_stop(void) {
  if (!g_flusher_on) return;
  g_flusher_on = false;
  if (!uv_is_closing((uv_handle_t *)&g_flusher)) uv_close((uv_handle_t *)&g_flusher, NULL);
}

void souk_log(souk_log_level_t level, const char *component, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  souk_vlog(level, component, fmt, ap);
  va_end(ap);
}
