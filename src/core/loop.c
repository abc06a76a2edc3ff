/* The loop, clocks, worker pool and a fast non-cryptographic PRNG. */
#include "souk/loop.h"

#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "souk/alloc.h"
#include "souk/err.h"

static uv_loop_t g_loop;
static int g_loop_ready;
static unsigned g_pending;

uv_loop_t *souk_loop(void) {
  if (!g_loop_ready) {
    int rc = uv_loop_init(&g_loop);
    SOUK_ASSERT(rc == 0);
    g_loop_ready = 1;
  }
  return &g_loop;
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void souk_loop_close(void) {
  if (!g_loop_ready) return;
  uv_walk(&g_loop, close_walk_cb, NULL);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&g_loop) == 0) g_loop_ready = 0;
}

uint64_t souk_now_ms(void) { return uv_hrtime() / 1000000u; }

uint64_t souk_unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_now(void *ud) { return souk_now_ms(); }
const souk_clock_t souk_clock_mono = {mono_now, NULL};

typedef struct work {
  uv_work_t req;
  souk_work_cb work;
  souk_done_cb done;
  void *ud;
} work_t;

static void work_cb(uv_work_t *req) {
  work_t *w = req->data;
  w->work(w->ud);
}

static void after_work_cb(uv_work_t *req, int status) {
  work_t *w = req->data;
  g_pending--;
  if (w->done) w->done(w->ud, status == UV_ECANCELED ? SOUK_ECANCELED : 0);
  souk_free(w);
}

int souk_work_submit(souk_work_cb work, souk_done_cb done, void *ud) {
  if (!work) return SOUK_EINVAL;
  work_t *w = souk_calloc(1, sizeof *w);
  w->req.data = w;
  w->work = work;
  w->done = done;
  w->ud = ud;
  if (uv_queue_work(souk_loop(), &w->req, work_cb, after_work_cb) != 0) {
    souk_free(w);
    return SOUK_EIO;
  }
  g_pending++;
  return 0;
}

unsigned souk_work_pending(void) { return g_pending; }

/* xoshiro256** seeded once from time and pid; used for jitter only. */
static uint64_t rng_s[4];
static int rng_seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

uint64_t souk_rand64(void) {
  if (!rng_seeded) {
    uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ souk_unix_ms();
    for (int i = 0; i < 4; i++) rng_s[i] = splitmix(&seed);
    rng_seeded = 1;
  }
  uint64_t r = rotl(rng_s[1] * 5, 7) * 9;
  uint64_t t = rng_s[1] << 17;
  rng_s[2] ^= rng_s[0];
  rng_s[3] ^= rng_s[1];
  rng_s[1] ^= rng_s[2];
  rng_s[0] ^= rng_s[3];
  rng_s[2] ^= t;
  rng_s[3] = rotl(rng_s[3], 45);
  return r;
}

double souk_rand01(void) { return (double)(souk_rand64() >> 11) * 0x1.0p-53; }

/* ---- timers of their own allocation ---- */

static void timer_freed(uv_handle_t *h) { souk_free(h); }

uv_timer_t *souk_timer_every(uint64_t period_ms, uv_timer_cb cb, void *data, int unref) {
  uv_timer_t *t = souk_malloc(sizeof *t);
  if (uv_timer_init(souk_loop(), t) != 0) {
    souk_free(t);
    return NULL;
  }
  t->data = data;
  if (uv_timer_start(t, cb, period_ms, period_ms) != 0) {
    uv_close((uv_handle_t *)t, timer_freed);
    return NULL;
  }
  if (unref) uv_unref((uv_handle_t *)t);
  return t;
}

void souk_timer_free(uv_timer_t **t) {
  if (!t || !*t) return;
  uv_timer_stop(*t);
  uv_close((uv_handle_t *)*t, timer_freed);
  *t = NULL;
}
