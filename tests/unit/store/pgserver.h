/* A throwaway PostgreSQL server for tests, on loopback.
 *
 * pg_start() runs initdb and pg_ctl from /usr/lib/postgresql/15/bin (or
 * $SOUK_PG_BIN) in a fresh temp dir, on a free port, with trust auth and
 * fsync off.  Both refuse to run as root, so as root they run as the
 * `postgres` user through runuser, in a dir chowned to it.  pg_stop() stops
 * the server (immediate mode) and removes the dir; it is also registered
 * with atexit so a failing test cannot leave a server behind.  A forked
 * child never stops its parent's server.  When the binaries are missing,
 * pg_start() returns -1 and pg_why says so: callers skip, not fail. */
#ifndef SOUK_TEST_PGSERVER_H
#define SOUK_TEST_PGSERVER_H

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char pg_dir[256];
static char pg_bin[256];
static int pg_port;
static int pg_up;
static pid_t pg_owner;
static char pg_why[512];

static int pg_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

/* Run a PostgreSQL tool, as `postgres` when we are root. */
__attribute__((format(printf, 1, 2))) static int pg_run(const char *fmt, ...) {
  char cmd[2048], full[2300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (geteuid() == 0)
    snprintf(full, sizeof full, "runuser -u postgres -- %s", cmd);
  else
    snprintf(full, sizeof full, "%s", cmd);
  return system(full);
}

static void pg_stop(void) {
  if (!pg_dir[0] || getpid() != pg_owner) return;
  if (pg_up) {
    pg_run("%s/pg_ctl -D %s/data -m immediate -w -t 30 stop >>%s/ctl.log 2>&1", pg_bin, pg_dir,
           pg_dir);
    pg_up = 0;
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", pg_dir);
  if (system(cmd) != 0) fprintf(stderr, "pgserver: could not remove %s\n", pg_dir);
  pg_dir[0] = '\0';
}

static int pg_start(void) {
  const char *bin = getenv("SOUK_PG_BIN");
  snprintf(pg_bin, sizeof pg_bin, "%s", bin ? bin : "/usr/lib/postgresql/15/bin");
  char initdb[300], pgctl[300];
  snprintf(initdb, sizeof initdb, "%s/initdb", pg_bin);
  snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", pg_bin);
  if (access(initdb, X_OK) != 0 || access(pgctl, X_OK) != 0) {
    snprintf(pg_why, sizeof pg_why,
             "PostgreSQL binaries not found in %s (install "
             "postgresql-15 or set SOUK_PG_BIN): skipping the PostgreSQL tests",
             pg_bin);
    return -1;
  }
  struct passwd *pw = NULL;
  if (geteuid() == 0 && !(pw = getpwnam("postgres"))) {
    snprintf(pg_why, sizeof pg_why,
             "running as root and no `postgres` user to run "
             "initdb as: skipping the PostgreSQL tests");
    return -1;
  }
  snprintf(pg_dir, sizeof pg_dir, "/tmp/souk-pg-XXXXXX");
  if (!mkdtemp(pg_dir)) {
    snprintf(pg_why, sizeof pg_why, "mkdtemp failed");
    pg_dir[0] = '\0';
    return -1;
  }
  pg_owner = getpid();
  atexit(pg_stop);
  if (pw && chown(pg_dir, pw->pw_uid, pw->pw_gid) != 0) {
    snprintf(pg_why, sizeof pg_why, "chown %s failed", pg_dir);
    return -1;
  }
  if (pg_run("%s -D %s/data -A trust -U postgres -E UTF8 --locale=C --no-sync "
             ">%s/initdb.log 2>&1",
             initdb, pg_dir, pg_dir) != 0) {
    snprintf(pg_why, sizeof pg_why, "initdb failed; see %s/initdb.log", pg_dir);
    return -1;
  }
  for (int tries = 0; tries < 3 && !pg_up; tries++) {
    pg_port = pg_free_port();
    if (pg_run("%s -D %s/data -w -t 30 -l %s/server.log -o \"-c listen_addresses=127.0.0.1 "
               "-p %d -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=60\" start >%s/ctl.log 2>&1",
               pgctl, pg_dir, pg_dir, pg_port, pg_dir, pg_dir) == 0)
      pg_up = 1;
  }
  if (!pg_up) {
    snprintf(pg_why, sizeof pg_why, "pg_ctl start failed; see %s/server.log", pg_dir);
    return -1;
  }
  return 0;
}

/* Run one SQL command as the postgres superuser (create or drop a test
 * database).  Returns false, printing why, when it failed. */
static bool pg_admin(const char *sql) {
  char url[128];
  snprintf(url, sizeof url, "postgres://postgres@127.0.0.1:%d/postgres", pg_port);
  PGconn *c = PQconnectdb(url);
  bool ok = PQstatus(c) == CONNECTION_OK;
  if (ok) {
    PGresult *r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  if (!ok) fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
  PQfinish(c);
  return ok;
}

/* A fresh database on the running server for one test, named
 * <prefix><n>; its URL goes to url.  Returns false, printing why, when it
 * could not be created. */
static bool pg_create_db(const char *prefix, char *url, size_t n) {
  static int seq;
  char sql[96];
  snprintf(sql, sizeof sql, "CREATE DATABASE %s%d", prefix, ++seq);
  if (!pg_admin(sql)) return false;
  snprintf(url, n, "postgres://postgres@127.0.0.1:%d/%s%d", pg_port, prefix, seq);
  return true;
}

/* For a cmocka group of PostgreSQL tests: pg_state is 1 when the server
 * is up, -1 when it could not start (the tests skip, saying why). */
static int pg_state;

static inline int pg_group_setup(void **state) {
  (void)state;
  if (pg_start() == 0) {
    pg_state = 1;
  } else {
    pg_state = -1;
    fprintf(stderr, "[  SKIP    ] %s\n", pg_why);
  }
  return 0;
}

static inline int pg_group_teardown(void **state) {
  (void)state;
  pg_stop();
  return 0;
}

#endif
