/* Test helper: capture souk's log lines in a temporary file and count or
 * print them.  Header-only: each runner includes it once, after cmocka.h.
 * logcap_open()
 * sends every log line to the file; log_reset() forgets what was there. */
#ifndef SOUK_TEST_LOGCAP_H
#define SOUK_TEST_LOGCAP_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "souk/alloc.h"
#include "core/log.h"
#include "souk/log.h"

static FILE *g_log;

/** Start capturing; 0 on success. */
static int logcap_open(void) {
  g_log = tmpfile();
  if (!g_log) return -1;
  souk_log_set_fd(fileno(g_log));
  /* Tests count raw lines: a line repeated by an earlier test within the
   * same second must still be written (log.c coalesces repeats). */
  souk__log_set_coalesce(false);
  return 0;
}

/** Everything captured since the last reset, NUL-terminated; free it with
 * souk_free(). */
static char *logcap_text(void) {
  fflush(g_log);
  int fd = fileno(g_log);
  off_t end = lseek(fd, 0, SEEK_END);
  char *s = souk_malloc(end > 0 ? (size_t)end + 1 : 1);
  ssize_t n = end > 0 ? pread(fd, s, (size_t)end, 0) : 0;
  s[n > 0 ? n : 0] = '\0';
  return s;
}

/** Forget what was captured. */
static void log_reset(void) {
  fflush(g_log);
  assert_int_equal(ftruncate(fileno(g_log), 0), 0);
  lseek(fileno(g_log), 0, SEEK_SET);
}

/** How many times needle occurs in what was captured. */
static int log_count(const char *needle) {
  char *s = logcap_text();
  int count = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
    count++;
  souk_free(s);
  return count;
}

/** Print what was captured to stderr (for a failing test). */
static void log_dump(void) {
  char *s = logcap_text();
  fprintf(stderr, "---- log ----\n%s-------------\n", s);
  souk_free(s);
}

#endif
