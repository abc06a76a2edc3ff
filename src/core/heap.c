/* The C library's heap, tuned for a long-running daemon of one busy loop
 * thread: fewer malloc arenas, and freed memory given back to the kernel.
 * See souk__heap_init() in core.h, and bench/README.md for the figures. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/core.h"
#include "souk/err.h"
#include "souk/loop.h"

/* One arena for every thread.  glibc gives each thread that allocates
 * while another holds an arena a new arena of its own (up to 8 per core),
 * and each one keeps its touched pages: 12-36 KB per worker thread of
 * libuv's pool, which only runs SQLite and file work.  Threads keep their
 * tcache, so sharing the one arena costs them a lock only on a tcache
 * miss. */
#define HEAP_ARENAS 1
/* The trimmer looks once a second, and gives memory back once this much
 * more is free in the heap than after its last look or trim: below that,
 * the madvise calls and the page faults that follow would cost more than
 * the pages are worth. */
#define HEAP_TRIM_PERIOD_MS 1000
#define HEAP_TRIM_MIN       ((size_t)64 << 10)

static uv_timer_t g_timer;
static bool g_timer_on;
static size_t g_free_low; /* the fewest free bytes seen since the last trim */

void souk__heap_init(void) {
  /* Whoever set the arena count in the environment has the last word. */
  const char *tun = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_ARENA_MAX") || (tun && strstr(tun, "arena_max"))) return;
  mallopt(M_ARENA_MAX, HEAP_ARENAS);
}

bool souk__heap_trim_step(void) {
  /* fordblks: bytes in free chunks of every arena, resident or not. */
  struct mallinfo2 mi = mallinfo2();
  size_t free_now = mi.fordblks;
  if (free_now < g_free_low) g_free_low = free_now;
  if (free_now - g_free_low < HEAP_TRIM_MIN) return false;
  /* A burst (a thousand GUILD_CREATEs, a large READY) freed what it held:
   * hand the free pages back, or they stay in RSS for good. */
  malloc_trim(0);
  g_free_low = free_now;
  return true;
}

static void trim_cb(uv_timer_t *t) {
  (void)t;
  souk__heap_trim_step();
}

int souk__heap_trimmer_start(void) {
  if (g_timer_on) return 0;
  if (uv_timer_init(souk_loop(), &g_timer) != 0) return SOUK_EIO;
  g_free_low = 0;
  uv_timer_start(&g_timer, trim_cb, HEAP_TRIM_PERIOD_MS, HEAP_TRIM_PERIOD_MS);
  /* It must not keep an otherwise finished loop alive. */
  uv_unref((uv_handle_t *)&g_timer);
  g_timer_on = true;
  return 0;
}

static void trimmer_closed(uv_handle_t *h) {
  (void)h;
  g_timer_on = false;
}

void souk__heap_trimmer_stop(void) {
  if (!g_timer_on || uv_is_closing((uv_handle_t *)&g_timer)) return;
  uv_timer_stop(&g_timer);
  uv_close((uv_handle_t *)&g_timer, trimmer_closed);
}
