/* The skyblock module's files, under skyblock.dir (default
 * <core.data_dir>/skyblock):
 *
 *   summaries/date=YYYY-MM-DD/hour=HH/part-souk.parquet
 *       one file per closed hour (sb_market.h's rows), zstd Parquet written
 *       atomically by parquet.h; kept summary_retention_days by the
 *       storage janitor (one partition per day directory)
 *   spool/raw-YYYYMMDDHH.ndjson.zst
 *       with skyblock.spool: every page fetched, one JSON document a line,
 *       one zstd frame per page (frames concatenate, so appending after a
 *       restart keeps the file readable); kept raw_retention_hours
 *   state/window.ck.zst
 *       the checkpoint: the window with the open hour, saved every
 *       skyblock.checkpoint, after each hour closes and at shutdown, and
 *       loaded at start, so a restart loses nothing of the hour
 *
 * An hour closes once; if a restart replays it from an older checkpoint,
 * its part file is replaced (same name, atomic rename), never doubled.
 *
 * Compression and writing run on the thread pool; the loop only builds
 * what is written. */
#include "parquet.h"
#include "sb_mod.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/janitor.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define SPOOL_QUEUE_MAX 16

static struct {
  char *summaries, *spool, *state, *ckpt;
  unsigned busy;
  bool ck_running;
  /* The spool: pages wait here, one write job at a time keeps order. */
  struct spool_item *head, *tail;
  size_t queued;
  bool spool_running;
} g;

unsigned sb_files_busy(void) { return g.busy; }

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = souk_malloc(n);
  snprintf(s, n, "%s/%s", a, b);
  return s;
}

static int mkdir_p(const char *path) {
  char tmp[1024];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return SOUK_ETOOBIG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return SOUK_EIO;
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return SOUK_EIO;
  return 0;
}

/* Write data to path atomically: a temporary file beside it, fsync,
 * rename, fsync of the directory. */
static int write_atomic(const char *path, const void *data, size_t len) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return SOUK_EIO;
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      close(fd);
      unlink(tmp);
      return SOUK_EIO;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    unlink(tmp);
    return SOUK_EIO;
  }
  char dir[1100];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) {
    *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  return 0;
}

/* ---- the checkpoint ------------------------------------------------------------------- */

typedef struct ck_job {
  souk_buf_t raw;
  char *path;
  int rc;
  void (*done)(void *ud, int status);
  void *ud;
} ck_job_t;

static int ck_write(const char *path, const souk_buf_t *raw) {
  size_t cap = ZSTD_compressBound(raw->len);
  void *z = souk_malloc(cap);
  size_t n = ZSTD_compress(z, cap, raw->data, raw->len, 3);
  int rc = ZSTD_isError(n) ? SOUK_EIO : write_atomic(path, z, n);
  souk_free(z);
  return rc;
}

static void ck_work(void *ud) {
  ck_job_t *j = ud;
  j->rc = ck_write(j->path, &j->raw);
}

static void ck_after(void *ud, int status) {
  ck_job_t *j = ud;
  g.busy--;
  g.ck_running = false;
  int rc = status ? status : j->rc;
  if (rc) {
    sb_g.checkpoint_errors++;
    SOUK_WARN("skyblock", "saving the checkpoint %s failed: %s", j->path, souk_strerror(rc));
  } else {
    sb_g.checkpoints++;
  }
  if (j->done) j->done(j->ud, rc);
  souk_buf_free(&j->raw);
  souk_free(j);
}

void sb_files_checkpoint(void (*done)(void *ud, int status), void *ud) {
  if (g.ck_running || !g.ckpt) {
    if (done) done(ud, 0);
    return;
  }
  ck_job_t *j = souk_calloc(1, sizeof *j);
  sb_mkts_save(sb_engine_store(sb_g.engine), &j->raw);
  j->path = g.ckpt;
  j->done = done;
  j->ud = ud;
  if (souk_work_submit(ck_work, ck_after, j) != 0) {
    souk_buf_free(&j->raw);
    souk_free(j);
    if (done) done(ud, SOUK_EIO);
    return;
  }
  g.ck_running = true;
  g.busy++;
}

/* Read and decompress a checkpoint file.  It touches no loop state, so it
 * also runs on the thread pool.  *out (souk_malloc'd) holds *len bytes. */
static int ck_read(const char *path, void **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return SOUK_ENOTFOUND;
  souk_buf_t z = {0};
  char tmp[65536];
  size_t got;
  while ((got = fread(tmp, 1, sizeof tmp, f)) > 0)
    souk_buf_append(&z, tmp, got);
  fclose(f);
  unsigned long long size = ZSTD_getFrameContentSize(z.data, z.len);
  int rc = SOUK_EPARSE;
  if (size != ZSTD_CONTENTSIZE_ERROR && size != ZSTD_CONTENTSIZE_UNKNOWN && size < (1ull << 31)) {
    void *raw = souk_malloc((size_t)size + 1);
    size_t n = ZSTD_decompress(raw, (size_t)size, z.data, z.len);
    if (!ZSTD_isError(n) && n == size) {
      *out = raw;
      *len = n;
      rc = 0;
    } else {
      souk_free(raw);
    }
  }
  souk_buf_free(&z);
  return rc;
}

static int ck_load(void) {
  void *raw = NULL;
  size_t n = 0;
  int rc = ck_read(g.ckpt, &raw, &n);
  if (rc) return rc;
  rc = sb_mkts_load(sb_engine_store(sb_g.engine), raw, n);
  souk_free(raw);
  return rc;
}

/* ---- taking over from another leader --------------------------------------------------------- */

typedef struct takeover {
  char *path;
  void *raw;
  size_t len;
  int rc;
  void (*done)(void *ud);
  void *ud;
} takeover_t;

static void takeover_work(void *ud) {
  takeover_t *t = ud;
  t->rc = ck_read(t->path, &t->raw, &t->len);
}

static void takeover_done(void *ud, int status) {
  takeover_t *t = ud;
  g.busy--;
  if (status) t->rc = status;
  if (sb_g.engine && t->rc == 0 && sb_engine_busy(sb_g.engine)) {
    /* Pages of this process's last time as leader are still being
     * applied to the window: it is not swapped under them. */
    SOUK_WARN("skyblock", "the leader's checkpoint not loaded: pages are still being applied here; "
                          "keeping this process's window");
  } else if (sb_g.engine && t->rc == 0) {
    /* The previous leader's window replaces what this process loaded at
     * its start (sb_mkts_load wants an empty store). */
    sb_mkts_t *m = sb_engine_store(sb_g.engine);
    sb_mkts_reset(m);
    sb_g.nwatch = 0; /* market ids of the old window */
    int rc = sb_mkts_load(m, t->raw, t->len);
    sb_mkts_stats_t ms;
    sb_mkts_stats(m, &ms);
    if (rc)
      SOUK_WARN("skyblock", "the leader's checkpoint %s not loaded (%s): starting with an empty "
                "window", t->path, souk_strerror(rc));
    else
      SOUK_INFO("skyblock", "checkpoint loaded at take-over: %zu items, %zu sales, %zu closed hours",
                ms.markets, ms.sales, ms.hours);
  } else if (t->rc != SOUK_ENOTFOUND && t->rc != SOUK_ECANCELED) {
    SOUK_WARN("skyblock", "the leader's checkpoint %s not read (%s): keeping this process's window",
              t->path, souk_strerror(t->rc));
  }
  souk_free(t->raw);
  souk_free(t->path);
  void (*done)(void *) = t->done;
  void *dud = t->ud;
  souk_free(t);
  done(dud);
}

void sb_files_take_over(void (*done)(void *ud), void *ud) {
  takeover_t *t = souk_calloc(1, sizeof *t);
  t->path = souk_strdup(g.ckpt);
  t->done = done;
  t->ud = ud;
  g.busy++;
  if (souk_work_submit(takeover_work, takeover_done, t) != 0) {
    t->rc = SOUK_EIO;
    takeover_done(t, 0);
  }
}

/* ---- the hourly summaries ---------------------------------------------------------------- */

enum {
  C_HOUR,
  C_KEY,
  C_ATTRS,
  C_NAME,
  C_LADDER, /* 16 columns */
  C_LISTINGS = C_LADDER + 16,
  C_NEW,
  C_SALES,
  C_VOLUME,
  C_MIN,
  C_MEDIAN,
  C_IQM,
  C_MAX,
  C_N
};

typedef struct sum_job {
  sb_summary_t *s;
  char *root;
  int rc;
  size_t rows;
  char path[1024];
} sum_job_t;

int sb_files_write_summary(sb_summary_t *s, const char *root, char *path, size_t cap,
                           size_t *rows) {
  char names[16][16];
  sb_pq_col_t cols[C_N];
  cols[C_HOUR] = (sb_pq_col_t){"hour", SB_PQ_INT64, false, true, SB_PQ_LT_TIMESTAMP_MS};
  cols[C_KEY] = (sb_pq_col_t){"item_key", SB_PQ_STRING, false, true, SB_PQ_LT_NONE};
  cols[C_ATTRS] = (sb_pq_col_t){"attrs", SB_PQ_STRING, false, true, SB_PQ_LT_NONE};
  cols[C_NAME] = (sb_pq_col_t){"name", SB_PQ_STRING, false, true, SB_PQ_LT_NONE};
  for (int k = 0; k < 16; k++) {
    snprintf(names[k], sizeof names[k], "ladder_%02d", k + 1);
    cols[C_LADDER + k] = (sb_pq_col_t){names[k], SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  }
  cols[C_LISTINGS] = (sb_pq_col_t){"listings", SB_PQ_INT32, false, true, SB_PQ_LT_NONE};
  cols[C_NEW] = (sb_pq_col_t){"new_listings", SB_PQ_INT32, false, true, SB_PQ_LT_NONE};
  cols[C_SALES] = (sb_pq_col_t){"sales", SB_PQ_INT32, false, true, SB_PQ_LT_NONE};
  cols[C_VOLUME] = (sb_pq_col_t){"volume", SB_PQ_INT64, false, false, SB_PQ_LT_NONE};
  cols[C_MIN] = (sb_pq_col_t){"sale_min", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  cols[C_MEDIAN] = (sb_pq_col_t){"sale_median", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  cols[C_IQM] = (sb_pq_col_t){"sale_iqm", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  cols[C_MAX] = (sb_pq_col_t){"sale_max", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  int64_t hour_ms = s->hour * SB_HOUR_MS;
  int rc = sb_pq_hive_path(path, cap, root, hour_ms, "souk");
  if (rc < 0) return rc;
  sb_pq_kv_t meta[] = {{"souk.skyblock.summary", "1"}};
  sb_pq_opts_t opts = {.meta = meta, .nmeta = 1};
  sb_pq_writer_t *w;
  rc = sb_pq_open(&w, path, cols, C_N, &opts);
  if (rc) return rc;
  for (size_t i = 0; i < s->n; i++) {
    const sb_sumrow_t *r = &s->rows[i];
    sb_pq_put_i64(w, C_HOUR, hour_ms);
    sb_pq_put_str(w, C_KEY, r->key, strlen(r->key));
    sb_pq_put_str(w, C_ATTRS, r->attrs, strlen(r->attrs));
    /* Names come from item NBT: strings the writer refuses (not UTF-8)
     * become "" rather than losing the row. */
    if (sb_pq_put_str(w, C_NAME, r->name, strlen(r->name)) != 0) sb_pq_put_str(w, C_NAME, "", 0);
    for (int k = 0; k < 16; k++) {
      if (k < r->nlad)
        sb_pq_put_i64(w, (size_t)(C_LADDER + k), r->lad[k]);
      else
        sb_pq_put_null(w, (size_t)(C_LADDER + k));
    }
    sb_pq_put_i32(w, C_LISTINGS, (int32_t)r->listings);
    sb_pq_put_i32(w, C_NEW, (int32_t)r->new_listings);
    sb_pq_put_i32(w, C_SALES, (int32_t)r->sales);
    sb_pq_put_i64(w, C_VOLUME, r->volume);
    const int64_t st[4] = {r->smin, r->smed, r->siqm, r->smax};
    for (int k = 0; k < 4; k++) {
      if (r->sales)
        sb_pq_put_i64(w, (size_t)(C_MIN + k), st[k]);
      else
        sb_pq_put_null(w, (size_t)(C_MIN + k));
    }
    rc = sb_pq_row_end(w);
    if (rc == SOUK_EIO) {
      sb_pq_abort(w);
      return rc;
    }
  }
  *rows = (size_t)sb_pq_rows(w);
  return sb_pq_close(w);
}

static void sum_work(void *ud) {
  sum_job_t *j = ud;
  j->rc = sb_files_write_summary(j->s, j->root, j->path, sizeof j->path, &j->rows);
}

static void sum_after(void *ud, int status) {
  sum_job_t *j = ud;
  g.busy--;
  int rc = status ? status : j->rc;
  if (rc) {
    sb_g.summary_errors++;
    SOUK_WARN("skyblock", "writing the summary %s failed: %s", j->path, souk_strerror(rc));
  } else {
    sb_g.summaries_written++;
    sb_g.summary_rows += j->rows;
    SOUK_INFO("skyblock", "hourly summary written: %s (%zu items)", j->path, j->rows);
  }
  sb_summary_free(j->s);
  souk_free(j);
}

void sb_files_on_hour(void *ud, sb_summary_t *s) {
  (void)ud;
  /* The window moved: save it now, so a restart does not close the hour
   * again from an older checkpoint. */
  if (sb_g.started) sb_files_checkpoint(NULL, NULL);
  if (!sb_conf.summaries || !g.summaries) {
    sb_summary_free(s);
    return;
  }
  sum_job_t *j = souk_calloc(1, sizeof *j);
  j->s = s;
  j->root = g.summaries;
  if (souk_work_submit(sum_work, sum_after, j) != 0) {
    sb_g.summary_errors++;
    sb_summary_free(s);
    souk_free(j);
    return;
  }
  g.busy++;
}

/* ---- the raw spool --------------------------------------------------------------------- */

typedef struct spool_item {
  struct spool_item *next;
  char *body;
  size_t len;
  int64_t at_ms;
  int rc;
  size_t written;
} spool_item_t;

static void spool_next(void);

static void spool_work(void *ud) {
  spool_item_t *it = ud;
  size_t cap = ZSTD_compressBound(it->len + 1);
  char *z = souk_malloc(cap);
  /* The page and its newline, one frame. */
  it->body[it->len] = '\n';
  size_t n = ZSTD_compress(z, cap, it->body, it->len + 1, 1);
  it->body[it->len] = '\0';
  if (ZSTD_isError(n)) {
    it->rc = SOUK_EIO;
    souk_free(z);
    return;
  }
  time_t t = (time_t)(it->at_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char path[1100];
  snprintf(path, sizeof path, "%s/raw-%04d%02d%02d%02d.ndjson.zst", g.spool, tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  it->rc = SOUK_EIO;
  if (fd >= 0) {
    ssize_t w = write(fd, z, n);
    if (w == (ssize_t)n) {
      it->rc = 0;
      it->written = n;
    }
    close(fd);
  }
  souk_free(z);
}

static void spool_after(void *ud, int status) {
  spool_item_t *it = ud;
  g.busy--;
  g.spool_running = false;
  if (status || it->rc) {
    sb_g.spool_errors++;
  } else {
    sb_g.spool_pages++;
    sb_g.spool_bytes += it->written;
  }
  souk_free(it->body);
  souk_free(it);
  spool_next();
}

static void spool_next(void) {
  if (g.spool_running || !g.head) return;
  spool_item_t *it = g.head;
  g.head = it->next;
  if (!g.head) g.tail = NULL;
  g.queued--;
  if (souk_work_submit(spool_work, spool_after, it) != 0) {
    sb_g.spool_errors++;
    souk_free(it->body);
    souk_free(it);
    return;
  }
  g.spool_running = true;
  g.busy++;
}

void sb_files_spool(sb_req_kind_t kind, const char *body, size_t len) {
  (void)kind;
  if (!g.spool) return;
  if (g.queued >= SPOOL_QUEUE_MAX) {
    /* The disk does not keep up: drop rather than hold pages in memory. */
    sb_g.spool_errors++;
    return;
  }
  spool_item_t *it = souk_calloc(1, sizeof *it);
  it->body = souk_malloc(len + 1);
  memcpy(it->body, body, len);
  it->body[len] = '\0';
  it->len = len;
  it->at_ms = (int64_t)souk_unix_ms();
  if (g.tail)
    g.tail->next = it;
  else
    g.head = it;
  g.tail = it;
  g.queued++;
  spool_next();
}

/* ---- start and stop -------------------------------------------------------------------------- */

int sb_files_start(void) {
  memset(&g, 0, sizeof g);
  sb_g.dir = sb_conf.dir ? souk_strdup(sb_conf.dir) : join(souk_data_dir(), "skyblock");
  g.summaries = join(sb_g.dir, "summaries");
  g.spool = join(sb_g.dir, "spool");
  g.state = join(sb_g.dir, "state");
  g.ckpt = join(g.state, "window.ck.zst");
  const char *dirs[] = {g.summaries, g.spool, g.state};
  for (int i = 0; i < 3; i++) {
    if (mkdir_p(dirs[i]) != 0) {
      SOUK_ERROR("skyblock", "cannot create %s: %s", dirs[i], strerror(errno));
      return SOUK_EIO;
    }
  }
  /* The simulated market starts afresh each time (its warm-up history is
   * the same for a seed): only a live window is carried over. */
  int rc = sb_g.live ? ck_load() : SOUK_ENOTFOUND;
  if (rc == 0) {
    sb_mkts_stats_t ms;
    sb_mkts_stats(sb_engine_store(sb_g.engine), &ms);
    SOUK_INFO("skyblock", "checkpoint loaded: %zu items, %zu sales, %zu closed hours", ms.markets,
              ms.sales, ms.hours);
  } else if (rc != SOUK_ENOTFOUND) {
    SOUK_WARN("skyblock", "checkpoint %s not loaded (%s): starting with an empty window", g.ckpt,
              souk_strerror(rc));
  }
  souk_janitor_set_t sum = {.name = "skyblock.summaries",
                            .root = g.summaries,
                            .retention_ms = (uint64_t)sb_conf.summary_retention_days * 86400000ULL,
                            .pattern = "date=%Y-%m-%d"};
  souk_janitor_set_t raw = {.name = "skyblock.spool",
                            .root = g.spool,
                            .retention_ms = (uint64_t)sb_conf.raw_retention_hours * 3600000ULL,
                            .pattern = "raw-%Y%m%d%H.ndjson.zst"};
  if ((rc = souk_janitor_register(&sum)) != 0 || (rc = souk_janitor_register(&raw)) != 0)
    SOUK_WARN("skyblock", "cannot register with the storage janitor: %s", souk_strerror(rc));
  return 0;
}

void sb_files_stop(void) {
  souk_janitor_unregister("skyblock.summaries");
  souk_janitor_unregister("skyblock.spool");
  /* Pages still waiting for the spool are dropped: it is best effort. */
  while (g.head) {
    spool_item_t *it = g.head;
    g.head = it->next;
    souk_free(it->body);
    souk_free(it);
  }
  g.tail = NULL;
  if (g.ckpt && sb_g.engine) {
    souk_buf_t raw = {0};
    sb_mkts_save(sb_engine_store(sb_g.engine), &raw);
    int rc = ck_write(g.ckpt, &raw);
    souk_buf_free(&raw);
    if (rc)
      SOUK_WARN("skyblock", "saving the checkpoint at shutdown failed: %s", souk_strerror(rc));
    else
      sb_g.checkpoints++;
  }
  souk_free(g.summaries);
  souk_free(g.spool);
  souk_free(g.state);
  souk_free(g.ckpt);
  memset(&g, 0, sizeof g);
}
