/* The SkyBlock poller; see sb_poller.h. */
#include "sb_poller.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <string.h>

/* A page's progress within a sweep. */
enum { PG_TODO, PG_ASKED, PG_PARSING, PG_OK, PG_RETRY };

/* How long the breaker stays open, and what opens it. */
#define BREAKER_FAILURES   5
#define BREAKER_WINDOW_MS  300000
#define BREAKER_OPEN_MS    60000
#define UNPOPULATED_MAX_MS 120000
#define ENDED_RETRIES      2

typedef struct req {
  uint32_t tag;
  sb_req_kind_t kind;
  int page;
  uint32_t sweep;
} req_t;

struct sb_poller {
  sb_poll_env_t env;
  sb_poll_conf_t c;
  souk_breaker_t *br;
  bool running;
  uint32_t sweep;
  uint32_t tag_seq;
  int64_t sweep_lu, known_lu;
  bool restarting; /* page 0 was asked again after disagreeing pages */
  int total, end_page;
  uint8_t *pg;
  uint8_t *tries;
  uint64_t *retry_at;
  size_t cap;
  req_t *reqs;
  size_t nreqs, capreqs;
  unsigned parsing;
  unsigned restarts_row;
  bool ended_pending, ended_inflight;
  unsigned ended_tries;
  uint64_t sweep_start;
  uint64_t unpop_wait;
  bool have_change;
  uint64_t step_cur;
  sb_poll_stats_t st;
};

void sb_poll_conf_defaults(sb_poll_conf_t *c) {
  memset(c, 0, sizeof *c);
  c->concurrency = 4;
  c->max_restarts = 3;
  c->page_retries = 3;
  c->interval_ms = 60000;
  c->min_interval_ms = 1000;
  c->retry_base_ms = 500;
  c->unpopulated_ms = 5000;
  c->breaker_name = "skyblock.hypixel";
}

const char *sb_poll_state_name(sb_poll_state_t s) {
  switch (s) {
  case SB_POLL_WAITING:
    return "waiting";
  case SB_POLL_PAGE0:
    return "page0";
  case SB_POLL_SWEEP:
    return "sweeping";
  case SB_POLL_BACKOFF:
    return "backoff";
  default:
    return "stopped";
  }
}

static uint64_t now(const sb_poller_t *p) { return p->env.now(p->env.ud); }

static double rnd(const sb_poller_t *p) { return p->env.rand ? p->env.rand(p->env.ud) : 0.5; }

sb_poller_t *sb_poller_new(const sb_poll_env_t *env, const sb_poll_conf_t *conf) {
  sb_poller_t *p = souk_calloc(1, sizeof *p);
  p->env = *env;
  p->c = *conf;
  if (p->c.concurrency < 1) p->c.concurrency = 1;
  if (p->c.min_interval_ms < 100) p->c.min_interval_ms = 100;
  if (p->c.interval_ms < p->c.min_interval_ms) p->c.interval_ms = p->c.min_interval_ms;
  souk_breaker_opts_t bo = {.failures = BREAKER_FAILURES,
                            .window_ms = BREAKER_WINDOW_MS,
                            .open_timeout_ms = BREAKER_OPEN_MS};
  p->br = souk_breaker_new(p->c.breaker_name ? p->c.breaker_name : "skyblock.hypixel", &bo,
                           p->c.breaker_clock);
  p->st.interval_ms = p->c.interval_ms;
  p->st.last_delay_ms = -1;
  p->unpop_wait = p->c.unpopulated_ms;
  return p;
}

static void cancel(sb_poller_t *p) {
  if (p->nreqs && p->env.cancel_all) p->env.cancel_all(p->env.ud);
  for (size_t i = 0; i < p->nreqs; i++) {
    if (p->reqs[i].kind == SB_REQ_ENDED) {
      /* Asked again with the next sweep of this refresh. */
      p->ended_inflight = false;
      p->ended_pending = true;
    }
  }
  p->nreqs = 0;
}

void sb_poller_free(sb_poller_t *p) {
  if (!p) return;
  cancel(p);
  souk_breaker_free(p->br);
  souk_free(p->pg);
  souk_free(p->tries);
  souk_free(p->retry_at);
  souk_free(p->reqs);
  souk_free(p);
}

souk_breaker_t *sb_poller_breaker(sb_poller_t *p) { return p->br; }

void sb_poller_stats(const sb_poller_t *p, sb_poll_stats_t *out) { *out = p->st; }

static void arm(sb_poller_t *p, uint64_t delay) {
  p->st.next_at_ms = now(p) + delay;
  p->env.arm(p->env.ud, delay);
}

/* ---- requests ---------------------------------------------------------------- */

static bool issue(sb_poller_t *p, sb_req_kind_t kind, int page) {
  uint32_t tag = ++p->tag_seq;
  if (p->nreqs == p->capreqs) {
    p->capreqs = p->capreqs ? p->capreqs * 2 : 8;
    p->reqs = souk_reallocarray(p->reqs, p->capreqs, sizeof *p->reqs);
  }
  p->reqs[p->nreqs++] = (req_t){tag, kind, page, p->sweep};
  p->st.requests++;
  int rc = p->env.fetch(p->env.ud, kind, page, tag);
  if (rc) {
    /* Could not even start: the same as a failed request, answered now. */
    sb_poller_response(p, tag, rc, 0, NULL, 0);
    return false;
  }
  return true;
}

static bool take_req(sb_poller_t *p, uint32_t tag, req_t *out) {
  for (size_t i = 0; i < p->nreqs; i++) {
    if (p->reqs[i].tag == tag) {
      *out = p->reqs[i];
      p->reqs[i] = p->reqs[--p->nreqs];
      return true;
    }
  }
  return false;
}

/* ---- scheduling -------------------------------------------------------------- */

static uint64_t lead_of(uint64_t interval) { return interval / 20; }

static uint64_t step_of(uint64_t interval) {
  uint64_t s = interval / 60;
  return s < 250 ? 250 : s;
}

/* Wait for the next refresh: a little before it is due, then every step;
 * when it is overdue, the step doubles up to the interval. */
static void schedule_next(sb_poller_t *p) {
  p->st.state = SB_POLL_WAITING;
  uint64_t t = now(p), iv = p->st.interval_ms;
  uint64_t step = p->step_cur ? p->step_cur : step_of(iv);
  uint64_t at = t + step;
  if (p->have_change) {
    uint64_t due = p->st.last_change_ms + iv;
    uint64_t early = due > lead_of(iv) ? due - lead_of(iv) : 0;
    if (early > at) {
      at = early;
    } else if (t > due + iv) {
      /* Overdue by a whole interval: the API may be stuck; back off. */
      p->step_cur = step * 2 < iv ? step * 2 : iv;
    }
  } else {
    at = t + (p->st.sweeps_started ? step : 0);
  }
  arm(p, at - t);
}

static void backoff(sb_poller_t *p, uint64_t delay) {
  p->st.state = SB_POLL_BACKOFF;
  arm(p, delay);
}

static void fail_cycle(sb_poller_t *p, int err, int status) {
  p->st.last_error = err ? err : SOUK_EHTTP;
  p->st.last_status = status;
  cancel(p);
  if (p->st.state == SB_POLL_SWEEP) {
    p->st.sweeps_incomplete++;
    p->env.sweep_end(p->env.ud, p->sweep, p->sweep_lu, false);
  }
  souk_breaker_failure(p->br);
  p->restarting = false;
  uint64_t d = p->c.retry_base_ms * 8;
  d = d / 2 + (uint64_t)(rnd(p) * (double)(d / 2));
  backoff(p, souk_breaker_state(p->br) == SOUK_BREAKER_OPEN ? BREAKER_OPEN_MS : d);
}

static void start_cycle(sb_poller_t *p) {
  if (!p->running) return;
  if (p->env.may_sweep && !p->env.may_sweep(p->env.ud)) {
    p->st.skipped_memory++;
    p->step_cur = 0;
    backoff(p, p->st.interval_ms);
    return;
  }
  if (!souk_breaker_allow(p->br)) {
    p->st.breaker_rejected++;
    backoff(p, BREAKER_OPEN_MS / 4);
    return;
  }
  p->sweep++;
  p->st.state = SB_POLL_PAGE0;
  issue(p, SB_REQ_PAGE, 0);
}

void sb_poller_start(sb_poller_t *p) {
  p->running = true;
  p->st.state = SB_POLL_WAITING;
  arm(p, 0);
}

void sb_poller_stop(sb_poller_t *p) {
  p->running = false;
  cancel(p);
  p->st.state = SB_POLL_STOPPED;
}

/* ---- the sweep --------------------------------------------------------------- */

static void sweep_arrays(sb_poller_t *p, int total) {
  if ((size_t)total > p->cap) {
    p->cap = (size_t)total;
    p->pg = souk_realloc(p->pg, p->cap);
    p->tries = souk_realloc(p->tries, p->cap);
    p->retry_at = souk_reallocarray(p->retry_at, p->cap, sizeof *p->retry_at);
  }
  memset(p->pg, PG_TODO, (size_t)total);
  memset(p->tries, 0, (size_t)total);
}

static void check_done(sb_poller_t *p) {
  if (p->st.state != SB_POLL_SWEEP) return;
  for (int i = 1; i < p->end_page; i++)
    if (p->pg[i] != PG_OK) return;
  p->st.sweeps_complete++;
  p->st.last_sweep_ms = now(p) - p->sweep_start;
  p->restarts_row = 0;
  souk_breaker_success(p->br);
  p->env.sweep_end(p->env.ud, p->sweep, p->sweep_lu, true);
  /* auctions_ended may still be in flight: it is not part of the sweep. */
  schedule_next(p);
}

/* Ask for what can be asked, within the concurrency limit. */
static void pump(sb_poller_t *p) {
  if (p->st.state != SB_POLL_SWEEP) return;
  uint64_t t = now(p), soonest = UINT64_MAX;
  while (p->nreqs < p->c.concurrency) {
    if (p->ended_pending && !p->ended_inflight) {
      p->ended_pending = false;
      p->ended_inflight = true;
      issue(p, SB_REQ_ENDED, 0);
      continue;
    }
    int pick = -1;
    for (int i = 1; i < p->end_page; i++) {
      if (p->pg[i] == PG_TODO || (p->pg[i] == PG_RETRY && p->retry_at[i] <= t)) {
        pick = i;
        break;
      }
    }
    if (pick < 0) break;
    p->pg[pick] = PG_ASKED;
    if (!issue(p, SB_REQ_PAGE, pick)) {
      /* issue() answered it as failed, which may have ended the sweep. */
      if (p->st.state != SB_POLL_SWEEP) return;
    }
  }
  for (int i = 1; i < p->end_page; i++)
    if (p->pg[i] == PG_RETRY && p->retry_at[i] > t && p->retry_at[i] < soonest)
      soonest = p->retry_at[i];
  if (soonest != UINT64_MAX) arm(p, soonest - t);
  check_done(p);
}

static void page_failed(sb_poller_t *p, int page, int err, int status) {
  p->st.pages_failed++;
  p->st.last_error = err ? err : SOUK_EHTTP;
  p->st.last_status = status;
  if (page == 0 || p->st.state != SB_POLL_SWEEP) {
    fail_cycle(p, err, status);
    return;
  }
  if (p->tries[page] >= p->c.page_retries) {
    fail_cycle(p, err, status);
    return;
  }
  p->tries[page]++;
  p->st.retries++;
  uint64_t cap = p->c.retry_base_ms << (p->tries[page] - 1);
  uint64_t d = cap / 2 + (uint64_t)(rnd(p) * (double)(cap / 2 + 1));
  p->pg[page] = PG_RETRY;
  p->retry_at[page] = now(p) + d;
  pump(p);
}

static void ended_failed(sb_poller_t *p) {
  p->st.ended_failed++;
  p->ended_inflight = false;
  if (p->ended_tries++ < ENDED_RETRIES) p->ended_pending = true;
  pump(p);
}

void sb_poller_response(sb_poller_t *p, uint32_t tag, int err, int status, const char *body,
                        size_t len) {
  req_t r;
  if (!take_req(p, tag, &r) || !p->running) return;
  if (r.kind == SB_REQ_ENDED) {
    if (err || status != 200) {
      ended_failed(p);
      return;
    }
    p->parsing++;
    p->env.page(p->env.ud, SB_REQ_ENDED, 0, r.sweep, souk_memdup0(body, len), len);
    pump(p);
    return;
  }
  if (r.sweep != p->sweep) return;
  if (!err && status == 503) {
    /* Not populated yet: never hammered.  The whole cycle waits. */
    p->st.not_populated++;
    p->st.last_error = SOUK_EHTTP;
    p->st.last_status = 503;
    cancel(p);
    if (p->st.state == SB_POLL_SWEEP) {
      p->st.sweeps_incomplete++;
      p->env.sweep_end(p->env.ud, p->sweep, p->sweep_lu, false);
    }
    uint64_t d = p->unpop_wait;
    p->unpop_wait = d * 2 > UNPOPULATED_MAX_MS ? UNPOPULATED_MAX_MS : d * 2;
    backoff(p, d);
    return;
  }
  if (!err && status == 404 && r.page > 0 && p->st.state == SB_POLL_SWEEP) {
    /* Past the last page: the house shrank since page 0 was read. */
    p->st.not_found++;
    if (r.page < p->end_page) p->end_page = r.page;
    pump(p);
    return;
  }
  if (err || status != 200) {
    if (r.page > 0 && r.page < p->end_page) p->pg[r.page] = PG_TODO;
    page_failed(p, r.page, err, status);
    return;
  }
  p->unpop_wait = p->c.unpopulated_ms;
  p->st.pages_ok++;
  if (r.page > 0 && r.page < p->end_page) p->pg[r.page] = PG_PARSING;
  p->parsing++;
  p->env.page(p->env.ud, SB_REQ_PAGE, r.page, r.sweep, souk_memdup0(body, len), len);
  pump(p);
}

/* A refresh was seen at t (local monotonic ms): t is when lastUpdated
 * happened as far as this clock can tell (see page 0 below). */
static void learn(sb_poller_t *p, uint64_t t) {
  if (p->have_change && t > p->st.last_change_ms) {
    uint64_t d = t - p->st.last_change_ms;
    uint64_t iv = p->st.interval_ms;
    /* A moving average; one late observation moves it by a third. */
    iv = (iv * 2 + d) / 3;
    if (iv < p->c.min_interval_ms) iv = p->c.min_interval_ms;
    if (iv > 600000) iv = 600000;
    p->st.interval_ms = iv;
  }
  p->have_change = true;
  p->st.last_change_ms = t;
  p->step_cur = 0;
}

void sb_poller_page_done(sb_poller_t *p, sb_req_kind_t kind, uint32_t sweep, int page, int rc,
                         int64_t last_updated, int total_pages) {
  if (p->parsing) p->parsing--;
  if (!p->running) return;
  if (kind == SB_REQ_ENDED) {
    p->ended_inflight = false;
    if (rc) {
      ended_failed(p);
    } else {
      p->st.ended_ok++;
      pump(p);
    }
    return;
  }
  if (sweep != p->sweep) return; /* a page of a sweep already abandoned */
  if (rc) {
    if (page > 0 && page < p->end_page) p->pg[page] = PG_TODO;
    page_failed(p, page, rc, 200);
    return;
  }
  if (page == 0) {
    if (p->st.state != SB_POLL_PAGE0) return;
    bool changed = last_updated > p->known_lu;
    if (!changed && !p->restarting) {
      p->st.unchanged++;
      souk_breaker_success(p->br);
      schedule_next(p);
      return;
    }
    uint64_t t = now(p);
    if (changed) {
      /* The next refresh is due an interval after lastUpdated, not after
       * the moment souk happened to see it: a first look 30 s into the
       * minute would otherwise keep every later look 30 s late.  The
       * refresh is placed back by how old lastUpdated was, as far as the
       * wall clock tells (never ahead: clocks disagree), and by at most
       * three quarters of an interval (older than that, the API missed a
       * refresh and when the next comes is anyone's guess). */
      uint64_t back = 0;
      if (p->env.wall) {
        int64_t delay = (int64_t)p->env.wall(p->env.ud) - last_updated;
        p->st.last_delay_ms = delay;
        uint64_t cap = p->st.interval_ms / 4 * 3;
        if (delay > 0) back = (uint64_t)delay < cap ? (uint64_t)delay : cap;
        if (back > t) back = t;
      }
      learn(p, t - back);
      p->known_lu = last_updated;
      p->ended_pending = true;
      p->ended_tries = 0;
    }
    p->restarting = false;
    p->sweep_lu = last_updated;
    p->st.last_updated = last_updated;
    p->total = total_pages < 1 ? 1 : total_pages;
    p->st.total_pages = p->total;
    p->end_page = p->total;
    sweep_arrays(p, p->total);
    p->pg[0] = PG_OK;
    p->sweep_start = t;
    p->st.sweeps_started++;
    p->st.state = SB_POLL_SWEEP;
    pump(p);
    return;
  }
  if (p->st.state != SB_POLL_SWEEP || page >= p->end_page) return;
  if (last_updated != p->sweep_lu) {
    /* Pages of two refreshes: start again from page 0. */
    p->st.restarts++;
    cancel(p);
    if (++p->restarts_row > p->c.max_restarts) {
      p->restarts_row = 0;
      p->st.sweeps_incomplete++;
      p->env.sweep_end(p->env.ud, p->sweep, p->sweep_lu, false);
      schedule_next(p);
      return;
    }
    p->st.sweeps_incomplete++;
    p->env.sweep_end(p->env.ud, p->sweep, p->sweep_lu, false);
    p->restarting = true;
    p->sweep++;
    p->st.state = SB_POLL_PAGE0;
    issue(p, SB_REQ_PAGE, 0);
    return;
  }
  p->pg[page] = PG_OK;
  pump(p);
}

void sb_poller_cut_sweep(sb_poller_t *p) {
  if (p->st.state != SB_POLL_SWEEP) return;
  cancel(p);
  p->st.sweeps_incomplete++;
  p->env.sweep_end(p->env.ud, p->sweep, p->sweep_lu, false);
  schedule_next(p);
}

void sb_poller_timer(sb_poller_t *p) {
  if (!p->running) return;
  switch (p->st.state) {
  case SB_POLL_WAITING:
  case SB_POLL_BACKOFF:
    start_cycle(p);
    break;
  case SB_POLL_SWEEP:
    pump(p);
    break;
  default:
    break;
  }
}
