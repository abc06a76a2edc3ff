/* Shared helpers of the ops unit tests: a fake clock, a scripted random
 * source and log capture.  Include after cmocka.h. */
#ifndef SOUK_TEST_OPSTEST_H
#define SOUK_TEST_OPSTEST_H

#include "core/log.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/recovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fake clock ---- */

static uint64_t fake_now_ms;
static inline uint64_t fake_clock_fn(void *ud) { return *(uint64_t *)ud; }
static const souk_clock_t fake_clock __attribute__((unused)) = {fake_clock_fn, &fake_now_ms};

/* ---- scripted random: returns seq[i++], repeating the last value ---- */

typedef struct script_rand {
  const double *seq;
  size_t n, i;
} script_rand_t;

static inline double script_next(void *ud) {
  script_rand_t *s = ud;
  if (!s->n) return 0;
  double v = s->seq[s->i < s->n ? s->i : s->n - 1];
  if (s->i < s->n) s->i++;
  return v;
}

/* ---- log capture into a temp file ---- */

static FILE *log_file;

static inline void log_capture_start(void) {
  log_file = tmpfile();
  souk_log_set_fd(fileno(log_file));
  souk__log_set_coalesce(false); /* lines are counted raw */
  souk_log_set_level(SOUK_LOG_DEBUG);
}

/* Everything logged since start (caller frees); capture continues. */
static inline char *log_captured(void) {
  int fd = fileno(log_file);
  off_t n = lseek(fd, 0, SEEK_END);
  char *s = calloc(1, (size_t)n + 1);
  ssize_t got = pread(fd, s, (size_t)n, 0);
  s[got > 0 ? got : 0] = 0;
  return s;
}

static inline int log_contains(const char *needle) {
  char *s = log_captured();
  int found = strstr(s, needle) != NULL;
  free(s);
  return found;
}

static inline void log_capture_stop(void) {
  souk_log_set_fd(2);
  souk_log_set_level(SOUK_LOG_INFO);
  if (log_file) fclose(log_file);
  log_file = NULL;
}

#endif
