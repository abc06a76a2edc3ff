/* The core's own collectors: the process and the event dispatcher.  The
 * other layers register theirs the same way (the gateway and the REST
 * client in src/discord/dmetrics.c, the cache in src/cache, the tasks and
 * errors in src/ops), so the registry never reaches up to read them.
 *
 * Each collector mirrors state that its owner already keeps (the kernel's
 * figures for the process, the dispatcher's count), so nothing on a hot
 * path pays for metrics: the work happens once per scrape. */
#include "core/core.h"
#include "core/metrics.h"
#include "souk/metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef SOUK_VERSION
#define SOUK_VERSION "0"
#endif

/* ---- process ----------------------------------------------------------- */

static struct { souk_series_t *rss, *vsz, *cpu, *start, *fds, *maxfds, *heap; } proc;

/* Seconds since the epoch at which this process started: its start time in
 * clock ticks after boot (/proc/self/stat field 22) plus the boot time
 * (btime in /proc/stat).  0 when either is unreadable. */
static double proc_start_time(void) {
  double btime = 0, ticks = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "btime %lf", &btime) == 1) break;
    fclose(f);
  }
  f = fopen("/proc/self/stat", "r");
  if (f) {
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    /* The command name (field 2) may hold spaces and parentheses: fields
     * are counted from the last ')'. */
    char *p = strrchr(buf, ')');
    if (p) {
      unsigned long long st = 0;
      /* After ')' come fields 3..; starttime is field 22, the 20th here. */
      int field = 3;
      for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "), field++) {
        if (field == 22) {
          st = strtoull(tok, NULL, 10);
          break;
        }
      }
      long hz = sysconf(_SC_CLK_TCK);
      if (hz > 0) ticks = (double)st / (double)hz;
    }
  }
  return btime > 0 ? btime + ticks : 0;
}

static void collect_process(void *ud) {
  long page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    unsigned long long size = 0, resident = 0;
    if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
      souk_gauge_set(proc.vsz, (double)size * (double)page);
      souk_gauge_set(proc.rss, (double)resident * (double)page);
    }
    fclose(f);
  }
  /* Bytes in use from malloc, every arena and thread: what souk and its
   * libraries hold, to the byte, where RSS moves in pages and keeps freed
   * memory (the benchmark's per-guild cost is read from it). */
  struct mallinfo2 mi = mallinfo2();
  souk_gauge_set(proc.heap, (double)(mi.uordblks + mi.hblkhd));
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    double s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    souk_counter_set(proc.cpu, s);
  }
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    double n = 0;
    for (struct dirent *e; (e = readdir(d));)
      if (e->d_name[0] != '.') n++;
    closedir(d);
    souk_gauge_set(proc.fds, n - 1); /* the directory's own fd */
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    souk_gauge_set(proc.maxfds, (double)rl.rlim_cur);
}

static void process_init(void) {
  proc.rss = souk_metric_series(
      souk_gauge_new("process_resident_memory_bytes", "Resident memory size in bytes.", NULL),
      NULL);
  proc.vsz = souk_metric_series(
      souk_gauge_new("process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL), NULL);
  proc.cpu =
      souk_metric_series(souk_counter_new("process_cpu_seconds_total",
                                          "Total user and system CPU time spent in seconds.", NULL),
                         NULL);
  proc.start = souk_metric_series(
      souk_gauge_new("process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.", NULL),
      NULL);
  proc.heap = souk_metric_series(
      souk_gauge_new("souk_process_heap_bytes",
                     "Bytes allocated with malloc and not freed, by souk and its libraries.", NULL),
      NULL);
  proc.fds = souk_metric_series(
      souk_gauge_new("process_open_fds", "Number of open file descriptors.", NULL), NULL);
  proc.maxfds = souk_metric_series(
      souk_gauge_new("process_max_fds", "Maximum number of open file descriptors.", NULL), NULL);
  /* The start time never changes: read it once. */
  souk_gauge_set(proc.start, proc_start_time());
  souk_gauge_set(
      souk_metric_series(
          souk_gauge_new("souk_build_info", "Version of this souk binary; always 1.", "version"),
          SOUK_LV(SOUK_VERSION)),
      1);
  souk_metrics_add_collector(collect_process, NULL);
}

/* ---- dispatcher -------------------------------------------------------- */

static souk_series_t *dispatched;

static void collect_dispatch(void *ud) {
  souk_counter_set(dispatched, (double)souk__dispatch_count());
}

static void dispatch_init(void) {
  souk_metric_t *m = souk_counter_new("souk_events_dispatched_total",
                                      "Events dispatched to module handlers.", NULL);
  dispatched = souk_metric_series(m, NULL);
  souk_metrics_add_collector(collect_dispatch, NULL);
}

void souk__metrics_builtin_init(void) {
  /* Idempotent without a flag of its own: after souk__metrics_shutdown()
   * the families are gone and are registered again. */
  if (souk_metric_find("process_resident_memory_bytes")) return;
  process_init();
  dispatch_init();
}
