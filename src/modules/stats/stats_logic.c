/* The server-stats module's pure logic (stats_logic.h). */
#include "stats_logic.h"

#include "souk/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- channel renames ---------------------------------------------------- */

uint64_t stats_rename_wait(const stats_rename_win_t *w, uint64_t now_ms, uint64_t margin_ms) {
  uint64_t wait = 0;
  if (w->blocked_until > now_ms) wait = w->blocked_until - now_ms;
  /* at[] is oldest first; the window is full when the oldest of the last
   * two renames is still inside it. */
  uint64_t oldest = w->at[0];
  bool full = true;
  for (size_t i = 0; i < STATS_RENAMES_PER_WINDOW; i++)
    if (w->at[i] == 0) full = false;
  if (full) {
    uint64_t free_at = oldest + STATS_RENAME_WINDOW_MS + margin_ms;
    if (free_at > now_ms && free_at - now_ms > wait) wait = free_at - now_ms;
  }
  return wait;
}

void stats_rename_sent(stats_rename_win_t *w, uint64_t now_ms) {
  for (size_t i = 0; i + 1 < STATS_RENAMES_PER_WINDOW; i++)
    w->at[i] = w->at[i + 1];
  w->at[STATS_RENAMES_PER_WINDOW - 1] = now_ms;
}

void stats_rename_blocked(stats_rename_win_t *w, uint64_t now_ms, uint64_t retry_after_ms) {
  if (now_ms + retry_after_ms > w->blocked_until) w->blocked_until = now_ms + retry_after_ms;
}

int stats_rename_encode(const stats_rename_win_t *w, char *out, size_t cap) {
  return snprintf(out, cap, "%" PRIu64 ",%" PRIu64 ",%" PRIu64, w->at[0], w->at[1],
                  w->blocked_until);
}

int stats_rename_decode(const char *s, size_t len, stats_rename_win_t *w) {
  memset(w, 0, sizeof *w);
  char buf[96];
  if (len >= sizeof buf) return SOUK_EINVAL;
  memcpy(buf, s, len);
  buf[len] = '\0';
  uint64_t v[3];
  char *p = buf;
  for (int i = 0; i < 3; i++) {
    char *end = NULL;
    if (*p < '0' || *p > '9') return SOUK_EINVAL;
    v[i] = strtoull(p, &end, 10);
    if (i < 2 && *end != ',') return SOUK_EINVAL;
    if (i == 2 && *end != '\0') return SOUK_EINVAL;
    p = end + 1;
  }
  if (v[0] && v[1] && v[0] > v[1]) return SOUK_EINVAL;
  w->at[0] = v[0];
  w->at[1] = v[1];
  w->blocked_until = v[2];
  return 0;
}

/* ---- adaptive polling ------------------------------------------------------ */

static uint64_t mix(uint64_t x) {
  /* splitmix64's finaliser: snowflakes differ mostly in their high bits. */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void stats_poll_start(stats_poll_t *p, const stats_poll_conf_t *c, uint64_t guild_id,
                      uint64_t now_ms) {
  p->interval_ms = c->min_ms;
  p->next_at = now_ms + (c->min_ms ? mix(guild_id) % c->min_ms : 0);
}

uint64_t stats_poll_done(stats_poll_t *p, const stats_poll_conf_t *c, bool changed,
                         uint64_t now_ms) {
  uint64_t used = p->interval_ms ? p->interval_ms : c->min_ms;
  uint64_t saved = c->min_ms && used > c->min_ms ? used / c->min_ms - 1 : 0;
  if (changed) {
    p->interval_ms = c->min_ms;
  } else {
    uint64_t n = used * 2;
    p->interval_ms = n > c->max_ms ? c->max_ms : n;
  }
  p->next_at = now_ms + p->interval_ms;
  return saved;
}

void stats_poll_hurry(stats_poll_t *p, const stats_poll_conf_t *c, uint64_t now_ms) {
  p->interval_ms = c->min_ms;
  if (p->next_at > now_ms + c->min_ms) p->next_at = now_ms + c->min_ms;
}

/* ---- templates ------------------------------------------------------------ */

static const char *const placeholders[] = {"members", "online", "bans", "guilds", "uptime"};

static int placeholder(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof placeholders / sizeof *placeholders; i++)
    if (strlen(placeholders[i]) == n && memcmp(placeholders[i], s, n) == 0) return (int)i;
  return -1;
}

/* Characters (UTF-8 code points) in s. */
static size_t u8len(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

int stats_template_check(const char *tmpl, char *err, size_t errcap) {
  size_t n = tmpl ? u8len(tmpl) : 0;
  if (n == 0 || n > STATS_NAME_MAX) {
    snprintf(err, errcap, "A template must be 1 to %d characters long.", STATS_NAME_MAX);
    return SOUK_EINVAL;
  }
  for (const char *p = tmpl; *p; p++) {
    if (*p == '}') {
      snprintf(err, errcap, "The template has a '}' without its '{'.");
      return SOUK_EINVAL;
    }
    if (*p != '{') continue;
    const char *e = strchr(p, '}');
    if (!e) {
      snprintf(err, errcap, "The template has a '{' without its '}'.");
      return SOUK_EINVAL;
    }
    if (placeholder(p + 1, (size_t)(e - p - 1)) < 0) {
      snprintf(err, errcap,
               "Unknown placeholder {%.*s}: use {members}, {online}, {bans}, {guilds} or "
               "{uptime}.",
               (int)(e - p - 1 > 20 ? 20 : e - p - 1), p + 1);
      return SOUK_EINVAL;
    }
    p = e;
  }
  return 0;
}

void stats_fmt_count(int64_t v, char *out, size_t cap) {
  char digits[32];
  uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  int n = snprintf(digits, sizeof digits, "%" PRIu64, a);
  char buf[48];
  size_t k = 0;
  if (v < 0) buf[k++] = '-';
  for (int i = 0; i < n; i++) {
    if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
    buf[k++] = digits[i];
  }
  buf[k] = '\0';
  snprintf(out, cap, "%s", buf);
}

void stats_fmt_uptime(uint64_t ms, char *out, size_t cap) {
  uint64_t s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  if (d)
    snprintf(out, cap, "%" PRIu64 "d %" PRIu64 "h", d, h);
  else if (h)
    snprintf(out, cap, "%" PRIu64 "h %" PRIu64 "m", h, m);
  else if (m)
    snprintf(out, cap, "%" PRIu64 "m", m);
  else
    snprintf(out, cap, "%" PRIu64 "s", s);
}

int stats_template_render(const char *tmpl, const stats_values_t *v, char *out, size_t cap) {
  size_t k = 0;
  if (cap == 0) return SOUK_EINVAL;
  for (const char *p = tmpl; *p && k + 1 < cap;) {
    const char *e = *p == '{' ? strchr(p, '}') : NULL;
    int ph = e ? placeholder(p + 1, (size_t)(e - p - 1)) : -1;
    if (ph < 0) {
      out[k++] = *p++;
      continue;
    }
    char val[48];
    int64_t x = ph == 0 ? v->members : ph == 1 ? v->online : ph == 2 ? v->bans : v->guilds;
    if (ph == 4)
      stats_fmt_uptime(v->uptime_ms, val, sizeof val);
    else if (x < 0)
      snprintf(val, sizeof val, "?");
    else
      stats_fmt_count(x, val, sizeof val);
    for (const char *q = val; *q && k + 1 < cap; q++)
      out[k++] = *q;
    p = e + 1;
  }
  out[k] = '\0';
  /* At most 100 characters, cut on a character boundary. */
  size_t chars = 0, i = 0;
  for (; out[i]; i++) {
    if (((unsigned char)out[i] & 0xC0) != 0x80) {
      if (chars == STATS_NAME_MAX) break;
      chars++;
    }
  }
  out[i] = '\0';
  /* Discord trims names; an all-space name is empty. */
  bool blank = true;
  for (const char *q = out; *q && blank; q++)
    blank = *q == ' ';
  return blank ? SOUK_EINVAL : 0;
}

/* ---- the daily summary ------------------------------------------------------ */

int64_t stats_local_day(const souk_tz_t *tz, uint64_t now_ms) {
  souk_civil_t c;
  souk_tz_local(tz, (int64_t)(now_ms / 1000), &c);
  return souk_days_from_civil(c.year, c.month, c.day);
}

static int64_t day_hour_instant_ms(const souk_tz_t *tz, int64_t day, int hour) {
  int y, m, d;
  souk_civil_from_days(day, &y, &m, &d);
  return souk_tz_instant(tz, y, m, d, hour, 0) * 1000;
}

int64_t stats_daily_due(const souk_tz_t *tz, int hour, int64_t last_day, uint64_t now_ms) {
  int64_t today = stats_local_day(tz, now_ms);
  if (today <= last_day) return -1;
  return (int64_t)now_ms >= day_hour_instant_ms(tz, today, hour) ? today : -1;
}

uint64_t stats_daily_next(const souk_tz_t *tz, int hour, int64_t last_day, uint64_t now_ms) {
  if (stats_daily_due(tz, hour, last_day, now_ms) >= 0) return now_ms;
  int64_t day = stats_local_day(tz, now_ms);
  if (day <= last_day) day = last_day + 1;
  for (int i = 0; i < 3; i++, day++) {
    int64_t at = day_hour_instant_ms(tz, day, hour);
    if (at > (int64_t)now_ms) return (uint64_t)at;
  }
  return now_ms + 86400000; /* not reached: one of three days has the hour ahead */
}

/* ---- the heartbeat ---------------------------------------------------------- */

void stats_heartbeat_text(const stats_heartbeat_t *h, char *out, size_t cap) {
  char up[32], lat[32], rss[32];
  stats_fmt_uptime(h->uptime_ms, up, sizeof up);
  if (h->latency_ms >= 0)
    snprintf(lat, sizeof lat, "%" PRId64 " ms", h->latency_ms);
  else
    snprintf(lat, sizeof lat, "not measured yet");
  if (h->rss_bytes)
    snprintf(rss, sizeof rss, "%" PRIu64 " MB", (h->rss_bytes + 512 * 1024) / (1024 * 1024));
  else
    snprintf(rss, sizeof rss, "unknown");
  int n = snprintf(out, cap,
                   "**souk heartbeat** <t:%" PRIu64 ":R>\n"
                   "status: **%s**\n"
                   "uptime: %s\n"
                   "gateway latency: %s\n"
                   "memory (RSS): %s\n"
                   "servers: %" PRIu64 " · commands served: %" PRIu64 "\n"
                   "last errors: %s",
                   h->now_unix_ms / 1000, h->health ? h->health : "?", up, lat, rss, h->guilds,
                   h->commands, h->errors && h->errors[0] ? "\n" : "none");
  if (n > 0 && (size_t)n < cap && h->errors && h->errors[0]) {
    /* Stay under Discord's 2,000 characters. */
    size_t end = cap < 1900 ? cap : 1900;
    if ((size_t)n < end) snprintf(out + n, end - (size_t)n, "%s", h->errors);
  }
}
