/* Helpers of the tests that read /metrics: render the registry, tear it
 * down, and check a rendering with the strict Python parser
 * (tests/fakes/promparse.py, prometheus_client's own parser).
 * Header-only: include it after cmocka.h. */
#ifndef SOUK_TEST_METRICSTEST_H
#define SOUK_TEST_METRICSTEST_H

#include "core/metrics.h"
#include "souk/alloc.h"
#include "souk/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a scrape would get now (the caller frees). */
static char *render(void) {
  souk_buf_t b = {0};
  souk__metrics_render(&b);
  souk_buf_putc(&b, 0);
  return souk_buf_steal(&b);
}

/* A cmocka teardown: forget every family and collector. */
static int teardown(void **state) {
  souk__metrics_shutdown();
  return 0;
}

/* Feed text to the strict parser; returns its exit status, or -1 when it
 * cannot run here. */
static int promparse(const char *text) {
  if (access("/usr/bin/python3", X_OK) != 0) return -1;
  if (system("/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1") != 0) return -1;
  char path[] = "/tmp/souk-metrics-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(text);
  assert_int_equal(write(fd, text, n), (ssize_t)n);
  close(fd);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/fakes/promparse.py %s", SOUK_SOURCE_DIR,
           path);
  int rc = system(cmd);
  unlink(path);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 99;
}

#endif
