/* IANA time zones from TZif files (include/souk/tz.h).
 *
 * A zone is its transition times, the local time type in force after each,
 * and the footer's POSIX TZ rule for instants after the last transition.
 * Lookups are a binary search; the rule is evaluated per year. */
#include "souk/tz.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ttype {
  int32_t utoff;
  bool dst;
} ttype_t;

/* A POSIX TZ rule: std offset, and optionally dst with its start/end. */
typedef struct rule_date {
  char kind; /* 'J' (1..365, no leap day), 'D' (0..365), 'M' (month.week.day) */
  int a, b, c;
  int32_t time; /* seconds after local midnight; may be negative or past 24 h */
} rule_date_t;

typedef struct posix_rule {
  bool valid, has_dst;
  int32_t std_off, dst_off; /* seconds east of UTC */
  rule_date_t start, end;
} posix_rule_t;

struct souk_tz {
  char name[SOUK_TZ_NAME_MAX + 1];
  int64_t *trans; /* ascending */
  uint8_t *idx;   /* type in force from trans[i] */
  size_t ntrans;
  ttype_t *types;
  size_t ntypes;
  posix_rule_t rule;
};

/* ---- civil dates (Howard Hinnant's algorithms) -------------------------- */

int64_t souk_days_from_civil(int year, int month, int day) {
  int64_t y = (int64_t)year - (month <= 2);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t mp = (month + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void souk_civil_from_days(int64_t z, int *year, int *month, int *day) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  *year = (int)(y + (m <= 2));
  *month = (int)m;
  *day = (int)d;
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* ---- the POSIX TZ rule -------------------------------------------------- */

static const char *parse_name(const char *s) {
  if (*s == '<') {
    const char *e = strchr(s, '>');
    return e ? e + 1 : NULL;
  }
  const char *b = s;
  while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
    s++;
  return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536 allows -167..167 for times). */
static const char *parse_hms(const char *s, int32_t *out) {
  int sign = 1;
  if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
  if (*s < '0' || *s > '9') return NULL;
  int32_t h = 0, m = 0, sec = 0;
  while (*s >= '0' && *s <= '9' && h <= 167)
    h = h * 10 + (*s++ - '0');
  if (*s == ':') {
    s++;
    if (*s < '0' || *s > '9') return NULL;
    while (*s >= '0' && *s <= '9' && m < 60)
      m = m * 10 + (*s++ - '0');
    if (*s == ':') {
      s++;
      if (*s < '0' || *s > '9') return NULL;
      while (*s >= '0' && *s <= '9' && sec < 60)
        sec = sec * 10 + (*s++ - '0');
    }
  }
  *out = sign * (h * 3600 + m * 60 + sec);
  return s;
}

static const char *parse_int(const char *s, int *out) {
  if (*s < '0' || *s > '9') return NULL;
  int v = 0;
  while (*s >= '0' && *s <= '9' && v < 100000)
    v = v * 10 + (*s++ - '0');
  *out = v;
  return s;
}

static const char *parse_date(const char *s, rule_date_t *d) {
  d->time = 7200; /* 02:00 by default */
  if (*s == 'J') {
    d->kind = 'J';
    s = parse_int(s + 1, &d->a);
  } else if (*s == 'M') {
    d->kind = 'M';
    s = parse_int(s + 1, &d->a);
    if (!s || *s != '.') return NULL;
    s = parse_int(s + 1, &d->b);
    if (!s || *s != '.') return NULL;
    s = parse_int(s + 1, &d->c);
    if (s && (d->a < 1 || d->a > 12 || d->b < 1 || d->b > 5 || d->c > 6)) return NULL;
  } else {
    d->kind = 'D';
    s = parse_int(s, &d->a);
  }
  if (s && *s == '/') s = parse_hms(s + 1, &d->time);
  return s;
}

static bool parse_rule(const char *s, posix_rule_t *r) {
  memset(r, 0, sizeof *r);
  int32_t off;
  s = parse_name(s);
  if (!s || !(s = parse_hms(s, &off))) return false;
  r->std_off = -off;
  if (*s == '\0') {
    r->valid = true;
    return true;
  }
  s = parse_name(s);
  if (!s) return false;
  r->has_dst = true;
  r->dst_off = r->std_off + 3600;
  if (*s && *s != ',') {
    if (!(s = parse_hms(s, &off))) return false;
    r->dst_off = -off;
  }
  if (*s != ',') {
    /* No rule given: POSIX leaves it to the implementation; US rules. */
    r->start = (rule_date_t){'M', 3, 2, 0, 7200};
    r->end = (rule_date_t){'M', 11, 1, 0, 7200};
  } else {
    if (!(s = parse_date(s + 1, &r->start)) || *s != ',') return false;
    if (!(s = parse_date(s + 1, &r->end))) return false;
  }
  r->valid = *s == '\0';
  return r->valid;
}

/* Local midnight's day number (local days) of a rule date in year y. */
static int64_t rule_day(const rule_date_t *d, int y) {
  int64_t jan1 = souk_days_from_civil(y, 1, 1);
  switch (d->kind) {
  case 'J': {
    int n = d->a; /* 1..365, February 29 never counted */
    int64_t day = jan1 + n - 1;
    if (is_leap(y) && n >= 60) day++;
    return day;
  }
  case 'D':
    return jan1 + d->a;
  default: {
    int64_t first = souk_days_from_civil(y, d->a, 1);
    int wd = (int)((first + 4) % 7); /* 1970-01-01 was a Thursday */
    if (wd < 0) wd += 7;
    int day = 1 + (d->c - wd + 7) % 7 + (d->b - 1) * 7;
    if (d->b == 5)
      while (day > month_days(y, d->a))
        day -= 7;
    return first + day - 1;
  }
  }
}

static int32_t rule_offset(const posix_rule_t *r, int64_t t, bool *dst) {
  *dst = false;
  if (!r->has_dst) return r->std_off;
  int y, m, d;
  souk_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
  /* Check the neighbouring years too, for rules near the new year. */
  for (int k = -1; k <= 1; k++) {
    int yy = y + k;
    int64_t start = rule_day(&r->start, yy) * 86400 + r->start.time - r->std_off;
    int64_t end = rule_day(&r->end, yy) * 86400 + r->end.time - r->dst_off;
    if (start < end) {
      if (t >= start && t < end) {
        *dst = true;
        return r->dst_off;
      }
    } else {
      /* Southern hemisphere: DST spans the new year. */
      int64_t next_end = rule_day(&r->end, yy + 1) * 86400 + r->end.time - r->dst_off;
      if (t >= start && t < next_end) {
        *dst = true;
        return r->dst_off;
      }
    }
  }
  return r->std_off;
}

/* ---- TZif ------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct counts {
  uint32_t isut, isstd, leap, time, type, chars;
} counts_t;

static bool header(const unsigned char *p, size_t n, counts_t *c, char *version) {
  if (n < 44 || memcmp(p, "TZif", 4) != 0) return false;
  *version = (char)p[4];
  c->isut = be32(p + 20);
  c->isstd = be32(p + 24);
  c->leap = be32(p + 28);
  c->time = be32(p + 32);
  c->type = be32(p + 36);
  c->chars = be32(p + 40);
  return c->type >= 1 && c->type <= 256 && c->time <= 100000 && c->chars <= 100000 &&
         c->leap <= 100000 && c->isut <= 256 && c->isstd <= 256;
}

static size_t block_len(const counts_t *c, size_t tsize) {
  return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd +
         c->isut;
}

static int parse_tzif(const unsigned char *p, size_t n, souk_tz_t *tz) {
  counts_t c;
  char version;
  if (!header(p, n, &c, &version)) return SOUK_EPARSE;
  size_t tsize = 4;
  const unsigned char *b = p + 44;
  size_t left = n - 44;
  if (version >= '2') {
    size_t skip = block_len(&c, 4);
    if (left < skip) return SOUK_EPARSE;
    b += skip;
    left -= skip;
    if (!header(b, left, &c, &version)) return SOUK_EPARSE;
    b += 44;
    left -= 44;
    tsize = 8;
  }
  size_t need = block_len(&c, tsize);
  if (left < need) return SOUK_EPARSE;
  tz->ntrans = c.time;
  tz->trans = souk_calloc(c.time ? c.time : 1, sizeof *tz->trans);
  tz->idx = souk_calloc(c.time ? c.time : 1, 1);
  for (size_t i = 0; i < c.time; i++)
    tz->trans[i] = tsize == 8 ? be64(b + i * 8) : (int64_t)(int32_t)be32(b + i * 4);
  b += c.time * tsize;
  for (size_t i = 0; i < c.time; i++) {
    tz->idx[i] = b[i];
    if (b[i] >= c.type) return SOUK_EPARSE;
  }
  b += c.time;
  tz->ntypes = c.type;
  tz->types = souk_calloc(c.type, sizeof *tz->types);
  for (size_t i = 0; i < c.type; i++) {
    tz->types[i].utoff = (int32_t)be32(b + i * 6);
    tz->types[i].dst = b[i * 6 + 4] != 0;
  }
  b += need - c.time * tsize - c.time;
  left -= need;
  for (size_t i = 1; i < tz->ntrans; i++)
    if (tz->trans[i] <= tz->trans[i - 1]) return SOUK_EPARSE;
  /* The footer: "\n<POSIX TZ>\n". */
  if (tsize == 8 && left >= 2 && b[0] == '\n') {
    const unsigned char *e = memchr(b + 1, '\n', left - 1);
    if (e && (size_t)(e - b) < 128) {
      char rule[128];
      memcpy(rule, b + 1, (size_t)(e - b - 1));
      rule[e - b - 1] = '\0';
      if (rule[0] && !parse_rule(rule, &tz->rule)) tz->rule.valid = false;
    }
  }
  return 0;
}

bool souk_tz_name_ok(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > SOUK_TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/') return false;
  const char *comp = name;
  for (const char *p = name;; p++) {
    if (*p == '/' || *p == '\0') {
      if (p == comp || *comp == '.') return false;
      if (*p == '\0') break;
      comp = p + 1;
      continue;
    }
    char ch = *p;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-' || ch == '+' || ch == '.'))
      return false;
  }
  return true;
}

static souk_tz_t *utc_zone(const char *name) {
  souk_tz_t *tz = souk_calloc(1, sizeof *tz);
  snprintf(tz->name, sizeof tz->name, "%s", name);
  tz->types = souk_calloc(1, sizeof *tz->types);
  tz->ntypes = 1;
  tz->rule.valid = true;
  return tz;
}

int souk_tz_load(const char *name, souk_tz_t **out) {
  if (!souk_tz_name_ok(name)) return SOUK_EINVAL;
  const char *dir = getenv("TZDIR");
  if (!dir || !*dir) dir = "/usr/share/zoneinfo";
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
      *out = utc_zone(name);
      return 0;
    }
    return SOUK_ENOTFOUND;
  }
  unsigned char *buf = souk_malloc(1 << 17);
  size_t n = fread(buf, 1, 1 << 17, f);
  fclose(f);
  souk_tz_t *tz = souk_calloc(1, sizeof *tz);
  snprintf(tz->name, sizeof tz->name, "%s", name);
  int rc = parse_tzif(buf, n, tz);
  souk_free(buf);
  if (rc) {
    souk_tz_free(tz);
    return rc;
  }
  *out = tz;
  return 0;
}

void souk_tz_free(souk_tz_t *tz) {
  if (!tz) return;
  souk_free(tz->trans);
  souk_free(tz->idx);
  souk_free(tz->types);
  souk_free(tz);
}

const char *souk_tz_name(const souk_tz_t *tz) { return tz->name; }

static int32_t offset_dst(const souk_tz_t *tz, int64_t t, bool *dst) {
  if (tz->ntrans > 0 && t < tz->trans[0]) {
    /* Before the first transition: the first non-DST type (RFC 8536). */
    for (size_t i = 0; i < tz->ntypes; i++)
      if (!tz->types[i].dst) {
        *dst = false;
        return tz->types[i].utoff;
      }
    *dst = tz->types[0].dst;
    return tz->types[0].utoff;
  }
  if (tz->ntrans == 0 || t >= tz->trans[tz->ntrans - 1]) {
    /* After the last transition the footer's rule governs; without one,
     * the last type stays in force. */
    if (tz->rule.valid) return rule_offset(&tz->rule, t, dst);
    const ttype_t *ty = &tz->types[tz->ntrans ? tz->idx[tz->ntrans - 1] : 0];
    *dst = ty->dst;
    return ty->utoff;
  }
  size_t lo = 0, hi = tz->ntrans - 1; /* trans[lo] <= t < trans[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->trans[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  const ttype_t *ty = &tz->types[tz->idx[lo]];
  *dst = ty->dst;
  return ty->utoff;
}

int32_t souk_tz_offset(const souk_tz_t *tz, int64_t unix_s) {
  bool dst;
  return offset_dst(tz, unix_s, &dst);
}

void souk_tz_local(const souk_tz_t *tz, int64_t unix_s, souk_civil_t *out) {
  bool dst;
  int32_t off = offset_dst(tz, unix_s, &dst);
  int64_t l = unix_s + off;
  int64_t days = floor_div(l, 86400);
  int64_t secs = l - days * 86400;
  souk_civil_from_days(days, &out->year, &out->month, &out->day);
  out->hour = (int)(secs / 3600);
  out->minute = (int)(secs / 60 % 60);
  out->second = (int)(secs % 60);
  out->weekday = (int)((days + 4) % 7);
  if (out->weekday < 0) out->weekday += 7;
  out->utc_offset_s = off;
  out->dst = dst;
}

int64_t souk_tz_instant(const souk_tz_t *tz, int year, int month, int day, int hour, int minute) {
  int64_t local = souk_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60;
  /* Offsets in force a day either side cover any single transition. */
  int32_t before = souk_tz_offset(tz, local - 86400 - 14 * 3600);
  int32_t after = souk_tz_offset(tz, local + 86400 + 14 * 3600);
  int64_t t1 = local - before, t2 = local - after;
  bool ok1 = souk_tz_offset(tz, t1) == before, ok2 = souk_tz_offset(tz, t2) == after;
  if (ok1 && ok2) return t1 < t2 ? t1 : t2; /* twice: the first */
  if (ok1) return t1;
  if (ok2) return t2;
  /* Never happens (clocks went forward over it): the transition instant,
   * between local - after (earlier) and local - before. */
  int64_t lo = t2 < t1 ? t2 : t1, hi = t2 < t1 ? t1 : t2;
  int32_t off_lo = souk_tz_offset(tz, lo);
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (souk_tz_offset(tz, mid) == off_lo)
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}
