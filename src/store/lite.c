/* The SQLite backend.
 *
 * Durability: the database runs in WAL mode.  With synchronous=NORMAL a
 * commit is appended to the WAL but the WAL is only fsynced at checkpoints,
 * so a commit survives any crash of the process (kill -9, abort, OOM kill):
 * the written pages sit in the OS page cache and SQLite replays the WAL on
 * the next open.  Only a power loss or kernel crash can lose the last
 * commits (never corrupt the file).  The issue asks that kill -9 during a
 * burst of writes keeps every acknowledged write, which NORMAL meets (the
 * store tests prove it); store.synchronous=full fsyncs on every commit for
 * operators who must also survive power loss. */
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int souk__lite_err(souk_db_t *db, int rc, const char *what) {
  int prim = rc & 0xff;
  const char *msg = db->lite ? sqlite3_errmsg(db->lite) : sqlite3_errstr(rc);
  switch (prim) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return 0;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    db->retry = true;
    SOUK_DEBUG("store", "sqlite %s: %s (will retry)", what, msg);
    return SOUK_EBUSY;
  case SQLITE_CONSTRAINT:
    SOUK_DEBUG("store", "sqlite %s: %s", what, msg);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return SOUK_EEXIST;
    return SOUK_EINVAL;
  case SQLITE_NOMEM:
    souk_oom(0);
  case SQLITE_FULL:
    /* Never "queue full": the disk (or quota) is, and the operator must
     * free space before anything is written again. */
    SOUK_ERROR("store", "sqlite %s: %s: the disk is full", what, msg);
    return SOUK_ENOSPC;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    SOUK_ERROR("store", "sqlite %s: %s", what, msg);
    return SOUK_ECORRUPT;
  case SQLITE_IOERR:
    /* SQLite reports some failed writes to a full disk as I/O errors; the
     * errno it saw tells them apart. */
    if (db->lite && (sqlite3_system_errno(db->lite) == ENOSPC ||
                     sqlite3_system_errno(db->lite) == EDQUOT)) {
      SOUK_ERROR("store", "sqlite %s: %s: the disk is full", what, msg);
      return SOUK_ENOSPC;
    }
    SOUK_ERROR("store", "sqlite %s: %s", what, msg);
    return SOUK_EIO;
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
    SOUK_ERROR("store", "sqlite %s: %s", what, msg);
    return SOUK_EIO;
  default:
    SOUK_WARN("store", "sqlite %s: %s", what, msg);
    return SOUK_EINVAL;
  }
}

static void global_init_once(void) {
  /* No up-front block of page cache per connection: Debian builds SQLite
   * to give each connection 20 pages (86 KB) at its first read, touched
   * at once, though most connections never need them all.  Pages are then
   * allocated one at a time, as they are read, up to cache_size. */
  sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)NULL, 0, 0);
}

void souk__lite_global_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, global_init_once);
}

void souk__lite_release_memory(souk_db_t *db) {
  if (db->lite) sqlite3_db_release_memory(db->lite);
}

int souk__lite_connect(souk_db_t *db) {
  souk_store_t *st = db->st;
  souk__lite_global_init();
  int rc = sqlite3_open_v2(st->path, &db->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    SOUK_ERROR("store", "cannot open %s: %s", st->path,
               db->lite ? sqlite3_errmsg(db->lite) : sqlite3_errstr(rc));
    sqlite3_close(db->lite);
    db->lite = NULL;
    return SOUK_EIO;
  }
  sqlite3_extended_result_codes(db->lite, 1);
  sqlite3_busy_timeout(db->lite, (int)st->conf.busy_timeout_ms);
  /* journal_mode answers with the mode in force; anything but "wal" means
   * the file system refused it and the durability argument above fails. */
  sqlite3_stmt *s = NULL;
  rc = sqlite3_prepare_v2(db->lite, "PRAGMA journal_mode=WAL", -1, &s, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
    int err = souk__lite_err(db, rc == SQLITE_ROW ? SQLITE_CANTOPEN : rc, "journal_mode=WAL");
    SOUK_ERROR("store", "%s: cannot switch to WAL mode", st->path);
    sqlite3_finalize(s);
    souk__lite_disconnect(db);
    return err ? err : SOUK_EIO;
  }
  sqlite3_finalize(s);
  const char *sync = st->conf.synchronous == SOUK_STORE_SYNC_FULL
                         ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                         : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;";
  rc = souk__lite_exec(db, sync);
  if (rc != 0) souk__lite_disconnect(db);
  return rc;
}

void souk__lite_disconnect(souk_db_t *db) {
  /* close_v2 defers the close until forgotten statements are finalized,
   * so a caller's leak cannot make this fail. */
  sqlite3_close_v2(db->lite);
  db->lite = NULL;
}

int souk__lite_exec(souk_db_t *db, const char *sql) {
  int rc = sqlite3_exec(db->lite, sql, NULL, NULL, NULL);
  return souk__lite_err(db, rc, "exec");
}

int souk__lite_prepare(souk_db_t *db, const char *sql, souk_stmt_t **out) {
  sqlite3_stmt *ls = NULL;
  int rc = sqlite3_prepare_v2(db->lite, sql, -1, &ls, NULL);
  if (rc != SQLITE_OK) {
    int err = souk__lite_err(db, rc, "prepare");
    sqlite3_finalize(ls);
    return err ? err : SOUK_EINVAL;
  }
  if (!ls) return SOUK_EINVAL; /* only whitespace or a comment */
  souk_stmt_t *s = souk_calloc(1, sizeof *s);
  s->db = db;
  s->ls = ls;
  *out = s;
  return 0;
}

int souk__lite_backup(sqlite3 *src, const char *path) {
  /* Copy into a temporary name and rename, so a crash mid-backup never
   * leaves a truncated file under the final name. */
  size_t n = strlen(path) + 8;
  char *tmp = souk_malloc(n);
  snprintf(tmp, n, "%s.tmp", path);
  unlink(tmp);
  sqlite3 *dst = NULL;
  int rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  int err = 0;
  if (rc != SQLITE_OK) {
    SOUK_ERROR("store", "backup: cannot create %s: %s", tmp, sqlite3_errstr(rc));
    err = SOUK_EIO;
    goto out;
  }
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
  if (!b) {
    SOUK_ERROR("store", "backup: %s", sqlite3_errmsg(dst));
    err = SOUK_EIO;
    goto out;
  }
  /* Copy in steps so writers are only briefly held up; a step that meets a
   * lock is simply tried again. */
  do {
    rc = sqlite3_backup_step(b, 256);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(5);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    SOUK_ERROR("store", "backup to %s failed: %s", path, sqlite3_errstr(rc));
    err = (rc & 0xff) == SQLITE_FULL || sqlite3_system_errno(dst) == ENOSPC ? SOUK_ENOSPC : SOUK_EIO;
    goto out;
  }
  /* The copy's journal mode is the source's (WAL); fold it back into a
   * single self-contained file. */
  sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
out:
  if (sqlite3_close(dst) != SQLITE_OK && !err) err = SOUK_EIO;
  if (!err && rename(tmp, path) != 0) {
    SOUK_ERROR("store", "backup: rename %s: %s", path, strerror(errno));
    err = souk_err_from_errno(errno);
  }
  if (err) unlink(tmp);
  souk_free(tmp);
  return err;
}
