/* The storage janitor: pure decision plus a thin directory executor. */
#include "ops/janitor.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the pure decision ---- */

typedef struct order {
  const souk__janitor_part_t *p;
  size_t i;
} order_t;

static int cmp_age(const void *a, const void *b) {
  const souk__janitor_part_t *x = ((const order_t *)a)->p, *y = ((const order_t *)b)->p;
  if (x->ts_ms != y->ts_ms) return x->ts_ms < y->ts_ms ? -1 : 1;
  if (x->set != y->set) return x->set < y->set ? -1 : 1;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  size_t i = ((const order_t *)a)->i, j = ((const order_t *)b)->i;
  return i < j ? -1 : i > j;
}

void souk__janitor_decide(const souk__janitor_part_t *parts, size_t n,
                          const souk__janitor_policy_t *pol, souk_janitor_verdict_t *verdict,
                          souk_janitor_totals_t *totals) {
  souk_janitor_totals_t t = {0};
  /* The newest partition of each set, protected from the cap. */
  size_t *newest = souk_calloc(pol->nsets ? pol->nsets : 1, sizeof *newest);
  for (size_t s = 0; s < pol->nsets; s++)
    newest[s] = SIZE_MAX;
  order_t *ord = souk_calloc(n ? n : 1, sizeof *ord);
  for (size_t i = 0; i < n; i++) {
    verdict[i] = SOUK_JANITOR_KEEP;
    ord[i] = (order_t){&parts[i], i};
    t.bytes_before += parts[i].bytes;
  }
  qsort(ord, n, sizeof *ord, cmp_age);
  for (size_t k = 0; k < n; k++) {
    uint32_t s = ord[k].p->set;
    if (s < pol->nsets) newest[s] = ord[k].i; /* the last in age order wins */
  }
  uint64_t left = t.bytes_before;
  for (size_t k = 0; k < n; k++) {
    const souk__janitor_part_t *p = ord[k].p;
    uint64_t ret = p->set < pol->nsets && pol->retention_ms ? pol->retention_ms[p->set] : 0;
    if (ret && pol->now_ms > ret && p->ts_ms < pol->now_ms - ret) {
      verdict[ord[k].i] = SOUK_JANITOR_RETENTION;
      t.deleted_retention++;
      t.freed_retention += p->bytes;
      left -= p->bytes;
    }
  }
  if (pol->cap_bytes && left > pol->cap_bytes) {
    double h = pol->headroom > 0 && pol->headroom <= 1 ? pol->headroom : 1;
    uint64_t target = (uint64_t)((double)pol->cap_bytes * h);
    for (size_t k = 0; k < n && left > target; k++) {
      size_t i = ord[k].i;
      const souk__janitor_part_t *p = ord[k].p;
      if (verdict[i] != SOUK_JANITOR_KEEP) continue;
      if (p->set < pol->nsets && newest[p->set] == i) continue;
      verdict[i] = SOUK_JANITOR_CAP;
      t.deleted_cap++;
      t.freed_cap += p->bytes;
      left -= p->bytes;
    }
    t.still_over = left > pol->cap_bytes;
  }
  t.bytes_after = left;
  if (totals) *totals = t;
  souk_free(ord);
  souk_free(newest);
}

/* ---- partition names ---- */

static int digits(const char **s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if ((*s)[i] < '0' || (*s)[i] > '9') return -1;
    v = v * 10 + ((*s)[i] - '0');
  }
  *s += n;
  *out = v;
  return 0;
}

/* Which fields a pattern uses: its finest one gives the period length. */
enum { F_Y = 1, F_M = 2, F_D = 4, F_H = 8, F_MIN = 16, F_S = 32 };

static int parse(const char *pat, const char *name, struct tm *tm, unsigned *fields) {
  memset(tm, 0, sizeof *tm);
  tm->tm_mday = 1;
  *fields = 0;
  const char *s = name;
  for (const char *p = pat; *p; p++) {
    if (*p != '%') {
      if (*s++ != *p) return SOUK_EPARSE;
      continue;
    }
    int v;
    switch (*++p) {
    case 'Y':
      if (digits(&s, 4, &v)) return SOUK_EPARSE;
      tm->tm_year = v - 1900;
      *fields |= F_Y;
      break;
    case 'm':
      if (digits(&s, 2, &v) || v < 1 || v > 12) return SOUK_EPARSE;
      tm->tm_mon = v - 1;
      *fields |= F_M;
      break;
    case 'd':
      if (digits(&s, 2, &v) || v < 1 || v > 31) return SOUK_EPARSE;
      tm->tm_mday = v;
      *fields |= F_D;
      break;
    case 'H':
      if (digits(&s, 2, &v) || v > 23) return SOUK_EPARSE;
      tm->tm_hour = v;
      *fields |= F_H;
      break;
    case 'M':
      if (digits(&s, 2, &v) || v > 59) return SOUK_EPARSE;
      tm->tm_min = v;
      *fields |= F_MIN;
      break;
    case 'S':
      if (digits(&s, 2, &v) || v > 60) return SOUK_EPARSE;
      tm->tm_sec = v;
      *fields |= F_S;
      break;
    case '%':
      if (*s++ != '%') return SOUK_EPARSE;
      break;
    default:
      return SOUK_EINVAL;
    }
  }
  if (*s) return SOUK_EPARSE;
  if (!(*fields & F_Y)) return SOUK_EINVAL;
  return 0;
}

static int check_pattern(const char *pat) {
  /* Validate the directives only: a name cannot be made up here, so walk
   * the pattern for unknown directives and a year. */
  bool year = false;
  for (const char *p = pat; *p; p++)
    if (*p == '%') {
      p++;
      if (!*p || !strchr("YmdHMS%", *p)) return SOUK_EINVAL;
      if (*p == 'Y') year = true;
    }
  return year ? 0 : SOUK_EINVAL;
}

int souk__janitor_parse_name(const char *pattern, const char *name, uint64_t *end_ms) {
  struct tm tm;
  unsigned f;
  int rc = parse(pattern, name, &tm, &f);
  if (rc) return SOUK_EPARSE;
  /* The end of the period: add one of the finest unit present. */
  if (f & F_S)
    tm.tm_sec += 1;
  else if (f & F_MIN)
    tm.tm_min += 1;
  else if (f & F_H)
    tm.tm_hour += 1;
  else if (f & F_D)
    tm.tm_mday += 1;
  else if (f & F_M)
    tm.tm_mon += 1;
  else
    tm.tm_year += 1;
  time_t t = timegm(&tm);
  if (t < 0) return SOUK_EPARSE;
  *end_ms = (uint64_t)t * 1000;
  return 0;
}

/* ---- sets ---- */

typedef struct set {
  char *name, *root, *pattern;
  uint64_t retention_ms;
} set_t;

static void sets_free(set_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    souk_free(v[i].name);
    souk_free(v[i].root);
    souk_free(v[i].pattern);
  }
  souk_free(v);
}

static set_t *sets_copy(const set_t *v, size_t n) {
  set_t *c = souk_calloc(n ? n : 1, sizeof *c);
  for (size_t i = 0; i < n; i++)
    c[i] = (set_t){souk_strdup(v[i].name), souk_strdup(v[i].root), souk_strdup(v[i].pattern),
                   v[i].retention_ms};
  return c;
}

static struct {
  souk__janitor_opts_t o;
  set_t *sets;
  size_t n;
  bool running;
  uv_timer_t *timer;
} J;

static uint64_t wall_ms(void) { return J.o.wall ? J.o.wall->now_ms(J.o.wall->ud) : souk_unix_ms(); }

void souk__janitor_stop(void) { souk_timer_free(&J.timer); }

void souk__janitor_shutdown(void) {
  souk__janitor_stop();
  sets_free(J.sets, J.n);
  J.sets = NULL;
  J.n = 0;
}

void souk__janitor_init(const souk__janitor_opts_t *opts) {
  souk__janitor_shutdown();
  memset(&J.o, 0, sizeof J.o);
  if (opts) J.o = *opts;
  if (!(J.o.headroom > 0 && J.o.headroom <= 1)) J.o.headroom = 0.9;
  if (!J.o.interval_ms) J.o.interval_ms = 4ull * 3600 * 1000;
}

void souk__janitor_set_limits(uint64_t cap_bytes, double headroom, bool dry_run) {
  J.o.cap_bytes = cap_bytes;
  J.o.headroom = headroom > 0 && headroom <= 1 ? headroom : 0.9;
  J.o.dry_run = dry_run;
}

int souk_janitor_register(const souk_janitor_set_t *s) {
  if (!s || !s->name || !*s->name || !s->root || !*s->root) return SOUK_EINVAL;
  if (s->pattern && check_pattern(s->pattern)) return SOUK_EINVAL;
  for (size_t i = 0; i < J.n; i++)
    if (strcmp(J.sets[i].name, s->name) == 0) return SOUK_EEXIST;
  J.sets = souk_reallocarray(J.sets, J.n + 1, sizeof *J.sets);
  J.sets[J.n++] =
      (set_t){souk_strdup(s->name), souk_strdup(s->root), souk_strdup(s->pattern), s->retention_ms};
  return 0;
}

int souk_janitor_unregister(const char *name) {
  for (size_t i = 0; i < J.n; i++)
    if (strcmp(J.sets[i].name, name) == 0) {
      souk_free(J.sets[i].name);
      souk_free(J.sets[i].root);
      souk_free(J.sets[i].pattern);
      memmove(&J.sets[i], &J.sets[i + 1], (J.n - i - 1) * sizeof *J.sets);
      J.n--;
      return 0;
    }
  return SOUK_ENOTFOUND;
}

/* ---- the executor (runs on a pool thread; touches only its job) ---- */

/* Apparent size of a file, or of a directory tree without following links. */
static uint64_t du_at(int dirfd, const char *name, const struct stat *st) {
  if (!S_ISDIR(st->st_mode)) return S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return 0;
  }
  uint64_t sum = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat cst;
    if (fstatat(fd, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) == 0) sum += du_at(fd, de->d_name, &cst);
  }
  closedir(d);
  return sum;
}

static int rm_at(int dirfd, const char *name) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
      int e = -errno;
      close(fd);
      return e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      int r = rm_at(fd, de->d_name);
      if (r && !rc) rc = r;
    }
    closedir(d);
    if (rc) return rc;
    return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
  }
  return unlinkat(dirfd, name, 0) == 0 ? 0 : -errno;
}

typedef struct job {
  set_t *sets;
  size_t nsets;
  souk__janitor_opts_t o;
  uint64_t now;
  souk_janitor_report_t rep;
  souk_janitor_done_cb done;
  void *ud;
} job_t;

static void list_set(const set_t *s, uint32_t si, souk__janitor_part_t **parts, size_t *n,
                     souk_janitor_set_report_t *sr) {
  DIR *d = opendir(s->root);
  if (!d) {
    /* A set whose directory does not exist yet simply has nothing. */
    sr->list_err = errno == ENOENT ? 0 : SOUK_EIO;
    if (sr->list_err)
      SOUK_WARN("janitor", "set=%s cannot list %s: %s", s->name, s->root, strerror(errno));
    return;
  }
  int fd = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    struct stat st;
    if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
    uint64_t ts;
    if (s->pattern) {
      if (souk__janitor_parse_name(s->pattern, de->d_name, &ts) != 0) continue;
    } else {
      ts = (uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000;
    }
    *parts = souk_reallocarray(*parts, *n + 1, sizeof **parts);
    uint64_t bytes = du_at(fd, de->d_name, &st);
    (*parts)[(*n)++] = (souk__janitor_part_t){si, souk_strdup(de->d_name), bytes, ts};
    sr->partitions++;
    sr->bytes += bytes;
  }
  closedir(d);
}

static int cmp_freed(const void *a, const void *b) {
  const order_t *x = a, *y = b;
  return cmp_age(x, y);
}

static void run_job(job_t *j) {
  souk_janitor_report_t *rep = &j->rep;
  memset(rep, 0, sizeof *rep);
  rep->dry_run = j->o.dry_run;
  rep->nsets = j->nsets;
  rep->sets = souk_calloc(j->nsets ? j->nsets : 1, sizeof *rep->sets);
  souk__janitor_part_t *parts = NULL;
  size_t n = 0;
  uint64_t *ret = souk_calloc(j->nsets ? j->nsets : 1, sizeof *ret);
  for (size_t s = 0; s < j->nsets; s++) {
    rep->sets[s].name = souk_strdup(j->sets[s].name);
    ret[s] = j->sets[s].retention_ms;
    list_set(&j->sets[s], (uint32_t)s, &parts, &n, &rep->sets[s]);
  }
  souk_janitor_verdict_t *v = souk_calloc(n ? n : 1, sizeof *v);
  souk__janitor_policy_t pol = {ret, j->nsets, j->now, j->o.cap_bytes, j->o.headroom};
  souk__janitor_decide(parts, n, &pol, v, &rep->totals);

  /* Delete oldest first, so an interrupted run has removed the oldest. */
  order_t *ord = souk_calloc(n ? n : 1, sizeof *ord);
  size_t nd = 0;
  for (size_t i = 0; i < n; i++)
    if (v[i] != SOUK_JANITOR_KEEP) ord[nd++] = (order_t){&parts[i], i};
  qsort(ord, nd, sizeof *ord, cmp_freed);
  rep->freed = souk_calloc(nd ? nd : 1, sizeof *rep->freed);
  for (size_t k = 0; k < nd; k++) {
    const souk__janitor_part_t *p = ord[k].p;
    const set_t *s = &j->sets[p->set];
    souk_janitor_freed_t *f = &rep->freed[rep->nfreed++];
    *f = (souk_janitor_freed_t){souk_strdup(s->name), souk_strdup(p->name), p->bytes, v[ord[k].i],
                                0};
    if (!j->o.dry_run) {
      int dfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int rc = dfd < 0 ? -errno : rm_at(dfd, p->name);
      if (dfd >= 0) close(dfd);
      if (rc) {
        f->err = rc;
        rep->errors++;
        continue;
      }
    }
    rep->freed_bytes += p->bytes;
    rep->sets[p->set].deleted++;
    rep->sets[p->set].freed += p->bytes;
  }
  for (size_t i = 0; i < n; i++)
    souk_free((char *)parts[i].name);
  souk_free(parts);
  souk_free(ord);
  souk_free(v);
  souk_free(ret);
}

void souk_janitor_report_free(souk_janitor_report_t *rep) {
  for (size_t i = 0; i < rep->nsets; i++)
    souk_free(rep->sets[i].name);
  souk_free(rep->sets);
  for (size_t i = 0; i < rep->nfreed; i++) {
    souk_free(rep->freed[i].set);
    souk_free(rep->freed[i].name);
  }
  souk_free(rep->freed);
  memset(rep, 0, sizeof *rep);
}

static const char *const why_names[] = {"kept", "retention", "cap"};

void souk_janitor_report_text(const souk_janitor_report_t *rep, souk_buf_t *out) {
  const souk_janitor_totals_t *t = &rep->totals;
  souk_buf_printf(
      out,
      "janitor%s: freed %llu bytes in %zu partitions (%zu by retention, %zu by cap); "
      "%llu -> %llu bytes%s%s\n",
      rep->dry_run ? " (dry run)" : "", (unsigned long long)rep->freed_bytes,
      rep->nfreed - rep->errors, t->deleted_retention, t->deleted_cap,
      (unsigned long long)t->bytes_before, (unsigned long long)(t->bytes_before - rep->freed_bytes),
      t->still_over ? "; still over the cap" : "", rep->errors ? "; some deletes failed" : "");
  for (size_t i = 0; i < rep->nsets; i++) {
    const souk_janitor_set_report_t *s = &rep->sets[i];
    souk_buf_printf(out, "  set %s: %zu partitions, %llu bytes; deleted %zu, freed %llu bytes%s\n",
                    s->name, s->partitions, (unsigned long long)s->bytes, s->deleted,
                    (unsigned long long)s->freed, s->list_err ? " (listing failed)" : "");
  }
  for (size_t i = 0; i < rep->nfreed; i++) {
    const souk_janitor_freed_t *f = &rep->freed[i];
    souk_buf_printf(out, "  - %s/%s %llu bytes (%s)%s%s\n", f->set, f->name,
                    (unsigned long long)f->bytes, why_names[f->why], f->err ? ": " : "",
                    f->err ? souk_strerror(f->err) : "");
  }
}

static void log_report(const souk_janitor_report_t *rep) {
  souk_buf_t b = {0};
  souk_janitor_report_text(rep, &b);
  char *line = b.data;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    souk_log(rep->errors ? SOUK_LOG_WARN : SOUK_LOG_INFO, "janitor", "%s", line);
    if (!nl) break;
    line = nl + 1;
  }
  souk_buf_free(&b);
}

static job_t *job_new(souk_janitor_done_cb done, void *ud) {
  job_t *j = souk_calloc(1, sizeof *j);
  j->sets = sets_copy(J.sets, J.n);
  j->nsets = J.n;
  j->o = J.o;
  j->now = wall_ms();
  j->done = done;
  j->ud = ud;
  return j;
}

static void job_free(job_t *j) {
  sets_free(j->sets, j->nsets);
  souk_janitor_report_free(&j->rep);
  souk_free(j);
}

int souk__janitor_run_sync(souk_janitor_report_t *rep) {
  if (J.running) return SOUK_EBUSY;
  job_t *j = job_new(NULL, NULL);
  run_job(j);
  log_report(&j->rep);
  *rep = j->rep;
  memset(&j->rep, 0, sizeof j->rep);
  job_free(j);
  return 0;
}

static void work_cb(void *ud) { run_job(ud); }

static void after_cb(void *ud, int status) {
  job_t *j = ud;
  J.running = false;
  if (status == 0) {
    log_report(&j->rep);
    if (j->done) j->done(&j->rep, j->ud);
  } else {
    SOUK_WARN("janitor", "run canceled");
  }
  job_free(j);
}

int souk_janitor_run(souk_janitor_done_cb done, void *ud) {
  if (J.running) return SOUK_EBUSY;
  job_t *j = job_new(done, ud);
  int rc = souk_work_submit(work_cb, after_cb, j);
  if (rc) {
    job_free(j);
    return rc;
  }
  J.running = true;
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  int rc = souk_janitor_run(NULL, NULL);
  if (rc) SOUK_WARN("janitor", "scheduled run not started: %s", souk_strerror(rc));
}

int souk__janitor_start(void) {
  if (J.timer) return SOUK_EBUSY;
  J.timer = souk_timer_every(J.o.interval_ms, timer_cb, NULL, 1);
  return J.timer ? 0 : SOUK_EIO;
}
