/* A throwaway redis-server on loopback for the cache's unit tests
 * (test_cache.c, test_idlock_redis.c).  Header-only: each runner includes
 * it once and gets its own copy of the state below.
 *
 * redis-server runs as a child with PR_SET_PDEATHSIG, so it dies with the
 * test even if the test is killed; a runner also registers redis_stop()
 * with atexit(), so a failing test never leaves one behind.
 * SOUK_TEST_REDIS_SERVER overrides the path of the binary (a missing one
 * makes the runner skip its Redis tests). */
#ifndef SOUK_TEST_CACHE_REDISSRV_H
#define SOUK_TEST_CACHE_REDISSRV_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/** The redis-server binary: SOUK_TEST_REDIS_SERVER, else Debian's. */
static const char *redis_bin(void) {
  const char *p = getenv("SOUK_TEST_REDIS_SERVER");
  return p && *p ? p : "/usr/bin/redis-server";
}

static pid_t g_redis_pid = -1; /* -1: no server running */
static int g_redis_port;       /* set by redis_pick_port() */
static char g_url[64];         /* redis://127.0.0.1:<g_redis_port> */

/** Kill the server with SIGKILL (as a crash would) and reap it; a no-op
 * when none runs.  Tests call it to take Redis away mid-stream. */
static void redis_stop(void) {
  if (g_redis_pid > 0) {
    kill(g_redis_pid, SIGKILL);
    waitpid(g_redis_pid, NULL, 0);
    g_redis_pid = -1;
  }
}

/** A loopback TCP port that was free a moment ago, or -1. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

/** Choose g_redis_port and fill g_url with it, before the first start. */
static void redis_pick_port(void) {
  g_redis_port = free_port();
  snprintf(g_url, sizeof g_url, "redis://127.0.0.1:%d", g_redis_port);
}

/** A blocking client for checks behind the code under test's back; NULL
 * if the server is down.  The caller frees it with redisFree(). */
static redisContext *sync_client(void) {
  struct timeval tv = {0, 200000};
  redisContext *rc = redisConnectWithTimeout("127.0.0.1", g_redis_port, tv);
  if (rc && rc->err) {
    redisFree(rc);
    return NULL;
  }
  return rc;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/** Start redis-server on g_redis_port (again, after redis_stop(): a
 * restart keeps the port) and wait until it answers PING.  Returns 0, or
 * -1 if it did not come up within about 5 s. */
static int redis_start(void) {
  char port[16];
  snprintf(port, sizeof port, "%d", g_redis_port);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    /* Dies with the test even if the test is killed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execl(redis_bin(), "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
          "--appendonly", "no", "--daemonize", "no", (char *)NULL);
    _exit(127);
  }
  g_redis_pid = pid;
  for (int i = 0; i < 500; i++) {
    redisContext *rc = sync_client();
    if (rc) {
      redisReply *r = redisCommand(rc, "PING");
      bool ok = r && r->type == REDIS_REPLY_STATUS;
      if (r) freeReplyObject(r);
      redisFree(rc);
      if (ok) return 0;
    }
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      g_redis_pid = -1;
      return -1;
    }
    sleep_ms(10);
  }
  return -1;
}

/** Leave a running, empty server for the next test.  An earlier failed
 * test may have left it stopped (SIGSTOP), dead or password-protected:
 * resume it, start one if none runs, and if FLUSHALL still fails, replace
 * it with a fresh one.  Returns 0 or -1, as a cmocka setup does. */
static int redis_fresh(void) {
  if (g_redis_pid > 0) kill(g_redis_pid, SIGCONT);
  if (g_redis_pid < 0 && redis_start() != 0) return -1;
  redisContext *rc = sync_client();
  redisReply *r = rc ? redisCommand(rc, "FLUSHALL") : NULL;
  bool ok = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  if (rc) redisFree(rc);
  if (ok) return 0;
  redis_stop();
  return redis_start();
}

#endif
