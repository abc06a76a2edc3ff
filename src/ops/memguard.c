/* The memory guard. */
#include "ops/memguard.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct trim {
  char *name;
  souk_memguard_trim_cb fn;
  void *ud;
} trim_t;

static struct {
  bool inited, sampled;
  souk__memguard_opts_t o;
  souk_memguard_stats_t st;
  uint64_t last_trim;
  bool trimmed;
  trim_t *trims;
  size_t ntrims;
  uv_timer_t *timer;
} M;

static const char *const level_names[] = {"normal", "soft", "hard"};

const char *souk_memguard_level_name(souk_memguard_level_t l) {
  return (unsigned)l < 3 ? level_names[l] : "unknown";
}

int souk__memguard_rss_proc(void *ud, uint64_t *rss) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return SOUK_EIO;
  unsigned long long size = 0, resident = 0;
  int n = fscanf(f, "%llu %llu", &size, &resident);
  fclose(f);
  if (n != 2) return SOUK_EIO;
  long page = sysconf(_SC_PAGESIZE);
  *rss = resident * (uint64_t)(page > 0 ? page : 4096);
  return 0;
}

static uint64_t now_ms(void) {
  return M.o.clock ? M.o.clock->now_ms(M.o.clock->ud) : souk_now_ms();
}

void souk__memguard_stop(void) { souk_timer_free(&M.timer); }

void souk__memguard_shutdown(void) {
  souk__memguard_stop();
  for (size_t i = 0; i < M.ntrims; i++)
    souk_free(M.trims[i].name);
  souk_free(M.trims);
  memset(&M, 0, sizeof M);
}

void souk__memguard_init(const souk__memguard_opts_t *opts) {
  souk__memguard_shutdown();
  if (opts) M.o = *opts;
  if (!M.o.sampler) M.o.sampler = souk__memguard_rss_proc;
  if (!M.o.interval_ms) M.o.interval_ms = 10000;
  M.inited = true;
  M.st.soft_bytes = M.o.soft_bytes;
  M.st.hard_bytes = M.o.hard_bytes;
  souk__memguard_sample();
}

void souk__memguard_set_limits(uint64_t soft_bytes, uint64_t hard_bytes) {
  M.o.soft_bytes = M.st.soft_bytes = soft_bytes;
  M.o.hard_bytes = M.st.hard_bytes = hard_bytes;
}

static souk_memguard_level_t level_for(uint64_t rss) {
  if (M.o.hard_bytes && rss >= M.o.hard_bytes) return SOUK_MEM_HARD;
  if (M.o.soft_bytes && rss >= M.o.soft_bytes) return SOUK_MEM_SOFT;
  return SOUK_MEM_NORMAL;
}

souk_memguard_level_t souk__memguard_sample(void) {
  if (!M.inited) souk__memguard_init(NULL);
  uint64_t rss = 0;
  int rc = M.o.sampler(M.o.sampler_ud, &rss);
  if (rc != 0) {
    /* Keep the last level: a failed read says nothing about memory. */
    if (M.st.sample_errors++ == 0) SOUK_WARN("memguard", "cannot read RSS: %s", souk_strerror(rc));
    return M.st.level;
  }
  M.sampled = true;
  M.st.samples++;
  M.st.rss = rss;
  if (rss > M.st.peak_rss) M.st.peak_rss = rss;
  souk_memguard_level_t lvl = level_for(rss), old = M.st.level;
  if (lvl != old) {
    souk_log(lvl > old ? SOUK_LOG_WARN : SOUK_LOG_INFO, "memguard",
             "level %s -> %s rss=%llu soft=%llu hard=%llu", level_names[old], level_names[lvl],
             (unsigned long long)rss, (unsigned long long)M.o.soft_bytes,
             (unsigned long long)M.o.hard_bytes);
    M.st.level = lvl;
  }
  uint64_t now = now_ms();
  if (lvl == SOUK_MEM_HARD &&
      (!M.trimmed || !M.o.trim_cooldown_ms || now - M.last_trim >= M.o.trim_cooldown_ms)) {
    M.trimmed = true;
    M.last_trim = now;
    M.st.trims++;
    SOUK_WARN("memguard", "rss=%llu above hard limit %llu: trimming %zu caches",
              (unsigned long long)rss, (unsigned long long)M.o.hard_bytes, M.ntrims);
    /* A trim callback may unregister itself, so iterate over a copy. */
    size_t n = M.ntrims;
    trim_t *copy = souk_calloc(n ? n : 1, sizeof *copy);
    memcpy(copy, M.trims, n * sizeof *copy);
    for (size_t i = 0; i < n; i++)
      copy[i].fn(copy[i].ud, rss, M.o.soft_bytes);
    souk_free(copy);
  }
  return lvl;
}

int souk__memguard_rss(uint64_t *rss) {
  if (!M.inited) return souk__memguard_rss_proc(NULL, rss);
  if (!M.sampled) souk__memguard_sample();
  if (!M.sampled) return SOUK_EIO;
  *rss = M.st.rss;
  return 0;
}

static void sample_cb(uv_timer_t *t) { souk__memguard_sample(); }

int souk__memguard_start(void) {
  if (!M.inited) souk__memguard_init(NULL);
  if (M.timer) return SOUK_EBUSY;
  M.timer = souk_timer_every(M.o.interval_ms, sample_cb, NULL, 1);
  return M.timer ? 0 : SOUK_EIO;
}

int souk_memguard_register_trim(const char *name, souk_memguard_trim_cb fn, void *ud) {
  if (!name || !*name || !fn) return SOUK_EINVAL;
  for (size_t i = 0; i < M.ntrims; i++)
    if (strcmp(M.trims[i].name, name) == 0) return SOUK_EEXIST;
  M.trims = souk_reallocarray(M.trims, M.ntrims + 1, sizeof *M.trims);
  M.trims[M.ntrims++] = (trim_t){souk_strdup(name), fn, ud};
  return 0;
}

int souk_memguard_unregister_trim(const char *name) {
  for (size_t i = 0; i < M.ntrims; i++)
    if (strcmp(M.trims[i].name, name) == 0) {
      souk_free(M.trims[i].name);
      memmove(&M.trims[i], &M.trims[i + 1], (M.ntrims - i - 1) * sizeof *M.trims);
      M.ntrims--;
      return 0;
    }
  return SOUK_ENOTFOUND;
}

bool souk_memguard_allow_heavy(const char *name) {
  if (M.st.level == SOUK_MEM_NORMAL) return true;
  M.st.heavy_skipped++;
  SOUK_WARN("memguard", "skipping heavy work=%s level=%s rss=%llu", name ? name : "?",
            level_names[M.st.level], (unsigned long long)M.st.rss);
  return false;
}

size_t souk_memguard_scale(const char *name, size_t n) {
  if (M.st.level == SOUK_MEM_NORMAL || n == 0) return n;
  size_t m = n / 4 ? n / 4 : 1;
  M.st.heavy_shrunk++;
  SOUK_WARN("memguard", "shrinking heavy work=%s from %zu to %zu level=%s", name ? name : "?", n, m,
            level_names[M.st.level]);
  return m;
}

souk_memguard_level_t souk_memguard_level(void) { return M.st.level; }

void souk_memguard_stats(souk_memguard_stats_t *out) { *out = M.st; }
