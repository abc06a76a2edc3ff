/* Schedule clocks with a test offset (include/souk/loop.h).
 *
 * Integration tests must show an hour of heartbeats or a ten-minute rename
 * window without waiting for them, against the real binary: they write an
 * offset to the file named by SOUK_TEST_CLOCK_FILE and the schedule clocks
 * jump by it.  Without that variable this is souk_now_ms() and
 * souk_unix_ms() and one branch. */
#include "souk/loop.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct {
  atomic_int state; /* 0: not looked up, 1: no file, 2: file */
  char path[1024];
  /* Loop-thread use only once the file is set; the stat below is cheap. */
  struct timespec mtime;
  off_t size;
  uint64_t offset;
} g;

static uint64_t offset_ms(void) {
  int st = atomic_load_explicit(&g.state, memory_order_acquire);
  if (st == 0) {
    const char *p = getenv("SOUK_TEST_CLOCK_FILE");
    if (p && *p && strlen(p) < sizeof g.path) {
      snprintf(g.path, sizeof g.path, "%s", p);
      st = 2;
    } else {
      st = 1;
    }
    atomic_store_explicit(&g.state, st, memory_order_release);
  }
  if (st == 1) return 0;
  struct stat sb;
  if (stat(g.path, &sb) != 0) return g.offset;
  if (sb.st_mtim.tv_sec == g.mtime.tv_sec && sb.st_mtim.tv_nsec == g.mtime.tv_nsec &&
      sb.st_size == g.size)
    return g.offset;
  FILE *f = fopen(g.path, "r");
  if (!f) return g.offset;
  char line[64] = "";
  bool got = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  char *end = NULL;
  unsigned long long v = got ? strtoull(line, &end, 10) : 0;
  if (got && end != line) {
    g.mtime = sb.st_mtim;
    g.size = sb.st_size;
    if (v > g.offset) g.offset = (uint64_t)v;
  }
  return g.offset;
}

uint64_t souk_sched_now_ms(void) { return souk_now_ms() + offset_ms(); }

uint64_t souk_sched_unix_ms(void) { return souk_unix_ms() + offset_ms(); }

static uint64_t sched_now(void *ud) {
  (void)ud;
  return souk_sched_now_ms();
}

static uint64_t sched_wall(void *ud) {
  (void)ud;
  return souk_sched_unix_ms();
}

const souk_clock_t souk_clock_sched = {sched_now, NULL};
const souk_clock_t souk_clock_sched_wall = {sched_wall, NULL};
