/* Error recovery: history, statistics, strategies, retry and breakers. */
#include "ops/recovery.h"

#include "ops/window.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CONTEXT_MAX    200
#define MAX_STRATEGIES 256

static const char *const sev_names[] = {"low", "medium", "high", "critical"};
static const char *const kind_names[] = {"retry", "backoff", "reset", "alert", "shutdown"};

const char *souk_severity_name(souk_severity_t sev) {
  return (unsigned)sev < 4 ? sev_names[sev] : "unknown";
}

const char *souk_recover_kind_name(souk_recover_kind_t kind) {
  return (unsigned)kind < 5 ? kind_names[kind] : "unknown";
}

/* ---- state ---- */

typedef struct type_stats {
  char *type;
  souk_error_stats_t st;
  souk__win_t win;
  uint64_t backoff_until;
} type_stats_t;

typedef struct strategy {
  char *type;
  souk_recovery_strategy_t s;
  uint64_t last_acted; /* 0: never */
  uint64_t acted;
} strategy_t;

typedef struct hist_entry {
  char *type; /* points into a type_stats_t, which lives as long as the recorder */
  souk_severity_t severity;
  int code;
  char context[CONTEXT_MAX + 1];
  uint64_t at_ms;
} hist_entry_t;

static struct {
  bool inited;
  const souk_clock_t *clock;
  const souk_rand_t *rand;
  uint64_t window_ms;
  hist_entry_t *hist;
  size_t hist_cap, hist_len, hist_head; /* head: index of the oldest */
  size_t hist_alloc; /* entries allocated: grows to hist_cap as errors come */
  type_stats_t *types;
  size_t ntypes;
  souk_error_stats_t all;
  souk__win_t all_win;
  strategy_t strategies[MAX_STRATEGIES];
  size_t nstrategies;
} R;

static uint64_t now_ms(const souk_clock_t *c) { return c ? c->now_ms(c->ud) : souk_now_ms(); }

static double draw(const souk_rand_t *r) {
  double d = r && r->next ? r->next(r->ud) : souk_rand01();
  if (!(d >= 0)) d = 0;
  if (d >= 1) d = 0.9999999999;
  return d;
}

void souk__recovery_shutdown(void) {
  for (size_t i = 0; i < R.ntypes; i++)
    souk_free(R.types[i].type);
  souk_free(R.types);
  for (size_t i = 0; i < R.nstrategies; i++)
    souk_free(R.strategies[i].type);
  souk_free(R.hist);
  memset(&R, 0, sizeof R);
}

void souk__recovery_init(const souk__recovery_opts_t *opts) {
  souk__recovery_shutdown();
  R.inited = true;
  R.clock = opts ? opts->clock : NULL;
  R.rand = opts ? opts->rand : NULL;
  R.hist_cap = opts && opts->history ? opts->history : 256;
  R.window_ms = opts && opts->window_ms ? opts->window_ms : 5 * 60 * 1000;
  /* The history is allocated as errors come (most processes record few or
   * none): 256 entries up front were 59 KB of every process. */
  R.hist = NULL;
  R.hist_alloc = 0;
  souk__win_init(&R.all_win, R.window_ms);
}

/* Modules may record errors before the core has initialised the recorder
 * (or in tools that never do); defaults keep that safe. */
static void ensure_init(void) {
  if (!R.inited) souk__recovery_init(NULL);
}

static type_stats_t *find_type(const char *type) {
  for (size_t i = 0; i < R.ntypes; i++)
    if (strcmp(R.types[i].type, type) == 0) return &R.types[i];
  return NULL;
}

static type_stats_t *get_type(const char *type) {
  type_stats_t *t = find_type(type);
  if (t) return t;
  /* Entries never move while the history points at their names: the name
   * is a separate allocation, only the array of structs is reallocated. */
  R.types = souk_reallocarray(R.types, R.ntypes + 1, sizeof *R.types);
  t = &R.types[R.ntypes++];
  memset(t, 0, sizeof *t);
  t->type = souk_strdup(type);
  souk__win_init(&t->win, R.window_ms);
  return t;
}

/* ---- strategies ---- */

int souk_recovery_register(const char *type, const souk_recovery_strategy_t *s) {
  ensure_init();
  if (!type || !*type || !s || (unsigned)s->kind > SOUK_RECOVER_SHUTDOWN ||
      (unsigned)s->min_severity > SOUK_SEV_CRITICAL)
    return SOUK_EINVAL;
  if (!s->fn && s->kind != SOUK_RECOVER_RETRY && s->kind != SOUK_RECOVER_BACKOFF)
    return SOUK_EINVAL;
  if (R.nstrategies == MAX_STRATEGIES) return SOUK_EFULL;
  strategy_t *st = &R.strategies[R.nstrategies++];
  memset(st, 0, sizeof *st);
  st->type = souk_strdup(type);
  st->s = *s;
  return 0;
}

int souk_recovery_unregister(const char *type, souk_recover_cb fn, void *ud) {
  ensure_init();
  size_t w = 0;
  bool found = false;
  for (size_t i = 0; i < R.nstrategies; i++) {
    strategy_t *st = &R.strategies[i];
    if (type && strcmp(st->type, type) == 0 && st->s.fn == fn && st->s.ud == ud) {
      souk_free(st->type);
      found = true;
      continue;
    }
    R.strategies[w++] = *st;
  }
  R.nstrategies = w;
  return found ? 0 : SOUK_ENOTFOUND;
}

static void run_strategy(strategy_t *st, size_t ti, souk_error_event_t *ev,
                         souk_recovery_advice_t *adv) {
  type_stats_t *t = &R.types[ti];
  const souk_recovery_strategy_t *s = &st->s;
  if (ev->severity < s->min_severity) return;
  if (s->cooldown_ms && st->acted && ev->at_ms - st->last_acted < s->cooldown_ms) return;
  switch (s->kind) {
  case SOUK_RECOVER_RETRY:
    if (ev->consecutive > s->retry.max_attempts) {
      SOUK_WARN("recovery", "type=%s gave up retrying after %u attempts", ev->type,
                s->retry.max_attempts);
      return;
    }
    ev->retry_in_ms = souk_retry_delay(&s->retry, ev->consecutive, draw(R.rand));
    adv->retry = true;
    adv->retry_in_ms = ev->retry_in_ms;
    break;
  case SOUK_RECOVER_BACKOFF:
    t->backoff_until = ev->at_ms + s->backoff_ms;
    if (s->backoff_ms > adv->backoff_ms) adv->backoff_ms = s->backoff_ms;
    break;
  default:
    break;
  }
  st->acted++;
  st->last_acted = ev->at_ms;
  adv->actions |= 1u << s->kind;
  if (s->kind != SOUK_RECOVER_RETRY && s->kind != SOUK_RECOVER_BACKOFF)
    SOUK_WARN("recovery", "type=%s strategy=%s severity=%s", ev->type,
              souk_recover_kind_name(s->kind), souk_severity_name(ev->severity));
  if (s->fn) s->fn(ev, s->ud);
}

/* ---- recording ---- */

void souk_error_record(const char *type, souk_severity_t sev, int code,
                       souk_recovery_advice_t *advice, const char *fmt, ...) {
  ensure_init();
  souk_recovery_advice_t adv = {0};
  if (!type || !*type) type = "unknown";
  if ((unsigned)sev > SOUK_SEV_CRITICAL) sev = SOUK_SEV_CRITICAL;
  uint64_t now = now_ms(R.clock);
  type_stats_t *t = get_type(type);

  hist_entry_t *h;
  if (R.hist_len < R.hist_cap) {
    if (R.hist_len == R.hist_alloc) {
      /* Until the ring is full its head is 0 and entries are in order, so
       * growing keeps them where they are. */
      size_t n = R.hist_alloc ? R.hist_alloc * 2 : 16;
      R.hist_alloc = n < R.hist_cap ? n : R.hist_cap;
      R.hist = souk_reallocarray(R.hist, R.hist_alloc, sizeof *R.hist);
    }
    h = &R.hist[(R.hist_head + R.hist_len++) % R.hist_cap];
  } else {
    h = &R.hist[R.hist_head];
    R.hist_head = (R.hist_head + 1) % R.hist_cap;
  }
  h->type = t->type;
  h->severity = sev;
  h->code = code;
  h->at_ms = now;
  h->context[0] = 0;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->context, sizeof h->context, fmt, ap);
    va_end(ap);
  }

  t->st.total++;
  t->st.by_severity[sev]++;
  t->st.last_at_ms = now;
  t->st.consecutive++;
  souk__win_add(&t->win, now, 1);
  R.all.total++;
  R.all.by_severity[sev]++;
  R.all.last_at_ms = now;
  souk__win_add(&R.all_win, now, 1);

  souk_log_level_t lvl = sev >= SOUK_SEV_HIGH     ? SOUK_LOG_ERROR
                         : sev == SOUK_SEV_MEDIUM ? SOUK_LOG_WARN
                                                  : SOUK_LOG_INFO;
  souk_log(lvl, "recovery", "error type=%s severity=%s code=%s context=\"%s\"", type,
           souk_severity_name(sev), code ? souk_errname(code) : "0", h->context);

  /* A callback may record errors itself, which can move R.types and
   * overwrite history slots, so the event carries its own copy and the
   * type is found again by index. */
  char ctx[CONTEXT_MAX + 1];
  memcpy(ctx, h->context, sizeof ctx);
  size_t ti = (size_t)(t - R.types);
  souk_error_event_t ev = {.type = t->type,
                           .severity = sev,
                           .code = code,
                           .context = ctx,
                           .at_ms = now,
                           .consecutive = t->st.consecutive};
  /* The type's own strategies first, then the catch-all ones.  A callback
   * may register or unregister strategies, so the count is re-read. */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < R.nstrategies; i++) {
      strategy_t *st = &R.strategies[i];
      bool match = pass == 0 ? strcmp(st->type, type) == 0
                             : strcmp(st->type, "*") == 0 && strcmp(type, "*") != 0;
      if (match) run_strategy(st, ti, &ev, &adv);
    }
  if (advice) *advice = adv;
}

void souk_error_resolved(const char *type) {
  ensure_init();
  type_stats_t *t = type ? find_type(type) : NULL;
  if (!t) return;
  t->st.consecutive = 0;
  t->backoff_until = 0;
}

uint64_t souk_recovery_backoff_left(const char *type) {
  ensure_init();
  type_stats_t *t = type ? find_type(type) : NULL;
  uint64_t now = now_ms(R.clock);
  return t && t->backoff_until > now ? t->backoff_until - now : 0;
}

int souk_error_stats(const char *type, souk_error_stats_t *out) {
  ensure_init();
  uint64_t now = now_ms(R.clock);
  memset(out, 0, sizeof *out);
  const souk__win_t *w;
  if (type) {
    type_stats_t *t = find_type(type);
    if (!t) return SOUK_ENOTFOUND;
    *out = t->st;
    w = &t->win;
  } else {
    *out = R.all;
    w = &R.all_win;
  }
  out->per_minute = (double)souk__win_sum(w, now) * 60000.0 / (double)R.window_ms;
  return 0;
}

size_t souk_error_history_len(void) { return R.hist_len; }

int souk_error_history_get(size_t i, souk_error_entry_t *out) {
  if (i >= R.hist_len) return SOUK_ERANGE;
  const hist_entry_t *h = &R.hist[(R.hist_head + i) % R.hist_cap];
  *out = (souk_error_entry_t){h->type, h->severity, h->code, h->context, h->at_ms};
  return 0;
}

/* ---- retry ---- */

uint64_t souk_retry_delay(const souk_retry_policy_t *p, uint32_t attempt, double r) {
  if (attempt == 0) attempt = 1;
  uint64_t ceil = p->base_ms;
  for (uint32_t i = 1; i < attempt && ceil < p->cap_ms; i++)
    ceil = ceil > UINT64_MAX / 2 ? UINT64_MAX : ceil * 2;
  if (ceil > p->cap_ms) ceil = p->cap_ms;
  if (!(r >= 0)) r = 0;
  if (r >= 1) r = 0.9999999999;
  uint64_t d = (uint64_t)(r * ((double)ceil + 1.0));
  return d > ceil ? ceil : d;
}

int souk_retry_failed(souk_retry_t *r, uint64_t *delay_ms) {
  if (r->attempts >= r->policy.max_attempts) return SOUK_ETIMEDOUT;
  r->attempts++;
  uint64_t d = souk_retry_delay(&r->policy, r->attempts, draw(r->rand));
  r->next_at_ms = now_ms(r->clock) + d;
  if (delay_ms) *delay_ms = d;
  return 0;
}

bool souk_retry_due(const souk_retry_t *r) { return now_ms(r->clock) >= r->next_at_ms; }

void souk_retry_reset(souk_retry_t *r) {
  r->attempts = 0;
  r->next_at_ms = 0;
}

/* ---- circuit breakers ---- */

struct souk_breaker {
  char *name;
  souk_breaker_opts_t o;
  const souk_clock_t *clock;
  souk_breaker_state_t state;
  uint64_t since; /* when the state began */
  bool probe_out; /* half-open: the probe has been admitted */
  uint64_t probe_at;
  souk__win_t calls, fails;
  souk_breaker_stats_t st;
  souk_breaker_t *next; /* registry */
};

static const char *const state_names[] = {"closed", "open", "half-open"};
static souk_breaker_t *breakers;

const char *souk_breaker_state_name(souk_breaker_state_t s) {
  return (unsigned)s < 3 ? state_names[s] : "unknown";
}

souk_breaker_t *souk_breaker_new(const char *name, const souk_breaker_opts_t *opts,
                                 const souk_clock_t *clock) {
  souk_breaker_t *b = souk_calloc(1, sizeof *b);
  b->name = souk_strdup(name ? name : "breaker");
  b->o = *opts;
  if (!b->o.window_ms) b->o.window_ms = 60000;
  b->clock = clock;
  b->since = now_ms(clock);
  souk__win_init(&b->calls, b->o.window_ms);
  souk__win_init(&b->fails, b->o.window_ms);
  b->next = breakers;
  breakers = b;
  return b;
}

void souk_breaker_free(souk_breaker_t *b) {
  if (!b) return;
  for (souk_breaker_t **p = &breakers; *p; p = &(*p)->next)
    if (*p == b) {
      *p = b->next;
      break;
    }
  souk_free(b->name);
  souk_free(b);
}

souk_breaker_t *souk_breaker_find(const char *name) {
  souk_breaker_t *found = NULL;
  /* The list is newest first; the first created wins. */
  for (souk_breaker_t *b = breakers; b; b = b->next)
    if (strcmp(b->name, name) == 0) found = b;
  return found;
}

const char *souk_breaker_name(const souk_breaker_t *b) { return b->name; }

souk_breaker_t *souk_breaker_next(const souk_breaker_t *b) { return b ? b->next : breakers; }

static void transition(souk_breaker_t *b, souk_breaker_state_t to, uint64_t now, const char *why) {
  souk_log_level_t lvl = to == SOUK_BREAKER_OPEN ? SOUK_LOG_WARN : SOUK_LOG_INFO;
  souk_log(lvl, "breaker", "breaker=%s %s -> %s (%s)", b->name, state_names[b->state],
           state_names[to], why);
  b->state = to;
  b->since = now;
  b->probe_out = false;
  if (to == SOUK_BREAKER_OPEN) b->st.opened++;
  if (to == SOUK_BREAKER_CLOSED) {
    souk__win_clear(&b->calls);
    souk__win_clear(&b->fails);
  }
}

/* Time-driven edges: open -> half-open after the timeout, and a half-open
 * probe that never reported is given up so another may go. */
static void advance(souk_breaker_t *b, uint64_t now) {
  if (b->state == SOUK_BREAKER_OPEN && now - b->since >= b->o.open_timeout_ms)
    transition(b, SOUK_BREAKER_HALF_OPEN, now, "open timeout passed");
  if (b->state == SOUK_BREAKER_HALF_OPEN && b->probe_out &&
      now - b->probe_at >= (b->o.open_timeout_ms ? b->o.open_timeout_ms : 1)) {
    SOUK_WARN("breaker", "breaker=%s probe never reported; admitting another", b->name);
    b->probe_out = false;
  }
}

bool souk_breaker_allow(souk_breaker_t *b) {
  uint64_t now = now_ms(b->clock);
  advance(b, now);
  switch (b->state) {
  case SOUK_BREAKER_CLOSED:
    return true;
  case SOUK_BREAKER_HALF_OPEN:
    if (!b->probe_out) {
      b->probe_out = true;
      b->probe_at = now;
      return true;
    }
    break;
  default:
    break;
  }
  b->st.rejected++;
  return false;
}

void souk_breaker_success(souk_breaker_t *b) {
  uint64_t now = now_ms(b->clock);
  advance(b, now);
  b->st.successes++;
  if (b->state == SOUK_BREAKER_HALF_OPEN) {
    transition(b, SOUK_BREAKER_CLOSED, now, "probe succeeded");
    return;
  }
  souk__win_add(&b->calls, now, 1);
}

void souk_breaker_failure(souk_breaker_t *b) {
  uint64_t now = now_ms(b->clock);
  advance(b, now);
  b->st.failures++;
  if (b->state == SOUK_BREAKER_HALF_OPEN) {
    transition(b, SOUK_BREAKER_OPEN, now, "probe failed");
    return;
  }
  if (b->state == SOUK_BREAKER_OPEN) return;
  souk__win_add(&b->calls, now, 1);
  souk__win_add(&b->fails, now, 1);
  uint64_t calls = souk__win_sum(&b->calls, now), fails = souk__win_sum(&b->fails, now);
  char why[96];
  if (b->o.failures && fails >= b->o.failures) {
    snprintf(why, sizeof why, "%llu failures in window", (unsigned long long)fails);
    transition(b, SOUK_BREAKER_OPEN, now, why);
  } else if (b->o.failure_ratio > 0 && calls >= (b->o.min_calls ? b->o.min_calls : 1) &&
             (double)fails >= b->o.failure_ratio * (double)calls) {
    snprintf(why, sizeof why, "%llu of %llu calls failed in window", (unsigned long long)fails,
             (unsigned long long)calls);
    transition(b, SOUK_BREAKER_OPEN, now, why);
  }
}

souk_breaker_state_t souk_breaker_state(souk_breaker_t *b) {
  advance(b, now_ms(b->clock));
  return b->state;
}

void souk_breaker_stats(souk_breaker_t *b, souk_breaker_stats_t *out) {
  uint64_t now = now_ms(b->clock);
  advance(b, now);
  *out = b->st;
  out->state = b->state;
  out->state_since_ms = b->since;
  out->window_calls = (uint32_t)souk__win_sum(&b->calls, now);
  out->window_failures = (uint32_t)souk__win_sum(&b->fails, now);
}

void souk_breaker_reset(souk_breaker_t *b) {
  uint64_t now = now_ms(b->clock);
  if (b->state != SOUK_BREAKER_CLOSED) transition(b, SOUK_BREAKER_CLOSED, now, "reset by admin");
  souk__win_clear(&b->calls);
  souk__win_clear(&b->fails);
}

void souk__recovery_report(souk_buf_t *out) {
  ensure_init();
  souk_error_stats_t all;
  souk_error_stats(NULL, &all);
  souk_buf_printf(out,
                  "errors: %llu total, %.2f/min (low %llu, medium %llu, high %llu, "
                  "critical %llu)\n",
                  (unsigned long long)all.total, all.per_minute,
                  (unsigned long long)all.by_severity[0], (unsigned long long)all.by_severity[1],
                  (unsigned long long)all.by_severity[2], (unsigned long long)all.by_severity[3]);
  for (size_t i = 0; i < R.ntypes; i++) {
    souk_error_stats_t s;
    souk_error_stats(R.types[i].type, &s);
    souk_buf_printf(out, "  %s: %llu total, %.2f/min, %u consecutive\n", R.types[i].type,
                    (unsigned long long)s.total, s.per_minute, s.consecutive);
  }
  for (souk_breaker_t *b = breakers; b; b = b->next) {
    souk_breaker_stats_t s;
    souk_breaker_stats(b, &s);
    souk_buf_printf(out, "breaker %s: %s (opened %llu, rejected %llu)\n", b->name,
                    state_names[s.state], (unsigned long long)s.opened,
                    (unsigned long long)s.rejected);
  }
}

void souk__breakers_health_check(void *ud, souk_health_result_t *out) {
  souk_buf_t b = {0};
  size_t n = 0, bad = 0;
  for (souk_breaker_t *k = breakers; k; k = k->next) {
    n++;
    souk_breaker_state_t s = souk_breaker_state(k);
    if (s == SOUK_BREAKER_CLOSED) continue;
    souk_buf_printf(&b, "%s%s %s", bad ? ", " : "", k->name, state_names[s]);
    bad++;
  }
  if (bad)
    souk_health_set(out, SOUK_HEALTH_WARNING, "%zu of %zu breakers not closed: %s", bad, n, b.data);
  else
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "%zu breakers closed", n);
  souk_buf_free(&b);
}
