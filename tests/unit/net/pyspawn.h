/* Test helper: run a small Python server (/usr/bin/python3 -c SCRIPT) and
 * read what it prints.  The script prints its listening port as its first
 * line.  Debian's /usr/bin/python3 is used on purpose: the `python3` on
 * PATH may be a build that cannot see Debian's python3-websockets. */
#ifndef SOUK_TEST_PYSPAWN_H
#define SOUK_TEST_PYSPAWN_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYSPAWN_PYTHON "/usr/bin/python3"

typedef struct pyserver {
  pid_t pid;
  int fd;    /* read end of the child's stdout */
  int in_fd; /* write end of the child's stdin; closing it ends the child */
  char buf[4096];
  size_t len;
  int port;
} pyserver_t;

extern char **environ;

/* True when the interpreter and python3-websockets are available. */
static inline bool pyspawn_available(void) {
  if (access(PYSPAWN_PYTHON, X_OK) != 0) return false;
  return system(PYSPAWN_PYTHON " -c 'import websockets' >/dev/null 2>&1") == 0;
}

/* Read one line (without the newline) into out, waiting up to timeout_ms.
 * Returns false on timeout or end of output. */
static inline bool pyserver_line(pyserver_t *s, char *out, size_t n, int timeout_ms) {
  for (;;) {
    char *nl = memchr(s->buf, '\n', s->len);
    if (nl) {
      size_t l = (size_t)(nl - s->buf);
      size_t c = l < n - 1 ? l : n - 1;
      memcpy(out, s->buf, c);
      out[c] = '\0';
      memmove(s->buf, nl + 1, s->len - l - 1);
      s->len -= l + 1;
      return true;
    }
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) return false;
    ssize_t got = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
    if (got <= 0) return false;
    s->len += (size_t)got;
  }
}

/* Prepended to every script: the child exits when its stdin reaches end of
 * file, that is when the test process ends, even if it crashed or was
 * killed by a timeout, so no server outlives its test. */
#define PYSPAWN_PRELUDE                                                                            \
  "import os as _o, sys as _s, threading as _t\n"                                                  \
  "_t.Thread(target=lambda: (_s.stdin.read(), _o._exit(0)), daemon=True).start()\n"

/* Start the script; 0 on success (s->port set from the first line).  The
 * child's stderr goes to /dev/null unless PYSPAWN_VERBOSE is set. */
static inline int pyserver_start(pyserver_t *s, const char *script) {
  memset(s, 0, sizeof *s);
  s->pid = -1;
  s->fd = -1;
  s->in_fd = -1;
  int p[2], q[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  if (pipe2(q, O_CLOEXEC) != 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  size_t n = strlen(PYSPAWN_PRELUDE) + strlen(script) + 1;
  char *full = malloc(n);
  if (!full) abort();
  snprintf(full, n, "%s%s", PYSPAWN_PRELUDE, script);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, q[0], 0);
  if (!getenv("PYSPAWN_VERBOSE"))
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  char *argv[] = {(char *)PYSPAWN_PYTHON, (char *)"-c", full, NULL};
  int rc = posix_spawn(&s->pid, PYSPAWN_PYTHON, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  free(full);
  close(p[1]);
  close(q[0]);
  if (rc != 0) {
    close(p[0]);
    close(q[1]);
    s->pid = -1;
    return -1;
  }
  s->fd = p[0];
  s->in_fd = q[1];
  char line[64];
  if (!pyserver_line(s, line, sizeof line, 10000)) return -1;
  s->port = atoi(line);
  return s->port > 0 ? 0 : -1;
}

/* Kill the server and reap it. */
static inline void pyserver_stop(pyserver_t *s) {
  if (s->in_fd >= 0) close(s->in_fd);
  s->in_fd = -1;
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  if (s->fd >= 0) close(s->fd);
  s->pid = -1;
  s->fd = -1;
}

#endif
