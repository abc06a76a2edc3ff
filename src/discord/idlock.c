/* Identify-slot backends: in-process and lock file; see idlock.h.
 *
 * Both share the same front end: per bucket a FIFO of waiters and a
 * "granted, not yet released" flag, and one libuv timer that wakes up when
 * the earliest bucket may be able to grant.  They differ in where the time
 * of a bucket's last IDENTIFY lives: in memory, or in the lock file where
 * every process on the host sees it. */
#include "discord/idlock.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define IDL_LOG "identify"
/* How soon to try again when another process holds the lock file. */
#define IDL_BUSY_RETRY_MS 10
/* File layout: a 16-byte header, then one little-endian uint64 per bucket:
 * the monotonic millisecond of that bucket's last IDENTIFY.  At
 * IDL_DAY_OFF (the file is sparse up to there) the session starts of the
 * last SOUK_IDL_HOURS hours: per slot (hour % SOUK_IDL_HOURS) the hour as
 * a little-endian int64 and its count as a uint32, then 4 bytes unused. */
#define IDL_MAGIC "souk-identify-1\n"
#define IDL_HDR   16
#define IDL_DAY_OFF 65536
#define IDL_DAY_REC 16
/* Buckets whose records would reach the day record. */
#define IDL_FILE_BUCKETS ((IDL_DAY_OFF - IDL_HDR) / 8)

typedef struct bucket {
  souk__idl_queue_t q;  /* shards waiting for this bucket */
  bool held;            /* granted, release not seen yet */
  bool release_pending; /* release could not reach the file yet */
  uint64_t last;        /* local backend: last IDENTIFY time */
  uint64_t not_before;  /* do not try before this (file backend) */
} bucket_t;

typedef struct idl {
  bucket_t *b;
  uint32_t nb;
  uint32_t interval;
  souk_clock_t clock;
  uv_timer_t *timer;
  bool in_kick;
  int fd; /* -1 for the local backend */
  char *path;
  souk__idl_day_t day;     /* session starts: all of them (local) or the file's, as last read */
  souk__idl_day_t pending; /* file backend: starts not yet written (the lock was busy) */
  bool day_pending;
} idl_t;

static uint64_t idl_now(idl_t *l) { return l->clock.now_ms(l->clock.ud); }

static bucket_t *idl_bucket(idl_t *l, uint32_t i) {
  if (i >= l->nb) {
    uint32_t n = i + 1 > l->nb * 2 ? i + 1 : l->nb * 2;
    l->b = souk_reallocarray(l->b, n, sizeof *l->b);
    memset(l->b + l->nb, 0, (n - l->nb) * sizeof *l->b);
    l->nb = n;
  }
  return &l->b[i];
}

/* ---- the lock file ------------------------------------------------------ */

/* Read-check-write under flock().  Returns 1 and records now when bucket i
 * may IDENTIFY, 0 and sets *retry_at when not yet, -1 when the lock is busy
 * (try again shortly).  The file is tiny and local, so the reads and writes
 * here do not block the loop in any way that matters; flock is never
 * waited on. */
static int file_try(idl_t *l, uint32_t i, uint64_t now, uint64_t *retry_at, bool stamp_only) {
  if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) return -1;
  int rc = 1;
  unsigned char rec[8] = {0};
  off_t off = IDL_HDR + (off_t)i * 8;
  uint64_t last = 0;
  if (pread(l->fd, rec, 8, off) == 8)
    for (int k = 7; k >= 0; k--)
      last = (last << 8) | rec[k];
  /* A time in the future comes from before a reboot (the monotonic clock
   * restarted): ignore it. */
  if (last > now) last = 0;
  if (!stamp_only && last && now < last + l->interval) {
    *retry_at = last + l->interval;
    rc = 0;
  } else {
    for (int k = 0; k < 8; k++)
      rec[k] = (unsigned char)(now >> (8 * k));
    if (pwrite(l->fd, rec, 8, off) != 8)
      SOUK_WARN(IDL_LOG, "cannot write %s: %s", l->path, strerror(errno));
  }
  flock(l->fd, LOCK_UN);
  return rc;
}

/* Read the day record (and, when write, add the pending starts to it)
 * under flock(), never waiting for it.  0, or -1 when the lock is busy. */
static int file_day(idl_t *l, bool write) {
  if (flock(l->fd, (write ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) return -1;
  unsigned char rec[SOUK_IDL_HOURS * IDL_DAY_REC];
  memset(rec, 0, sizeof rec);
  ssize_t got = pread(l->fd, rec, sizeof rec, IDL_DAY_OFF);
  (void)got; /* a short read leaves zeros: hours not held */
  souk__idl_day_t d;
  memset(&d, 0, sizeof d);
  for (int i = 0; i < SOUK_IDL_HOURS; i++) {
    const unsigned char *r = rec + i * IDL_DAY_REC;
    uint64_t h = 0;
    uint32_t n = 0;
    for (int k = 7; k >= 0; k--)
      h = (h << 8) | r[k];
    for (int k = 3; k >= 0; k--)
      n = (n << 8) | r[8 + k];
    d.hour[i] = (int64_t)h;
    d.n[i] = n;
  }
  if (write) {
    for (int i = 0; i < SOUK_IDL_HOURS; i++)
      if (l->pending.n[i]) souk__idl_day_add(&d, l->pending.hour[i], l->pending.n[i]);
    for (int i = 0; i < SOUK_IDL_HOURS; i++) {
      unsigned char *r = rec + i * IDL_DAY_REC;
      for (int k = 0; k < 8; k++)
        r[k] = (unsigned char)((uint64_t)d.hour[i] >> (8 * k));
      for (int k = 0; k < 4; k++)
        r[8 + k] = (unsigned char)(d.n[i] >> (8 * k));
    }
    if (pwrite(l->fd, rec, sizeof rec, IDL_DAY_OFF) != (ssize_t)sizeof rec)
      SOUK_WARN(IDL_LOG, "cannot write %s: %s", l->path, strerror(errno));
    memset(&l->pending, 0, sizeof l->pending);
    l->day_pending = false;
  }
  flock(l->fd, LOCK_UN);
  l->day = d;
  return 0;
}

/* ---- the shared front end ----------------------------------------------- */

static void idl_kick(idl_t *l);

static void timer_cb(uv_timer_t *t) { idl_kick(t->data); }

/* Grant what can be granted now, then arm the timer for the earliest
 * bucket that still has waiters. */
static void idl_kick(idl_t *l) {
  if (l->in_kick) return;
  l->in_kick = true;
  if (l->day_pending) file_day(l, true);
  for (uint32_t i = 0; i < l->nb; i++) {
    bucket_t *b = &l->b[i];
    uint64_t now = idl_now(l), at = 0;
    if (b->release_pending && file_try(l, i, now, &at, true) >= 0) b->release_pending = false;
    if (!b->q.head || b->held) continue;
    if (l->fd < 0) {
      if (b->last && now < b->last + l->interval) continue;
    } else {
      if (now < b->not_before) continue;
      int r = file_try(l, i, now, &at, false);
      if (r < 0) b->not_before = now + IDL_BUSY_RETRY_MS;
      if (r == 0) b->not_before = at;
      if (r <= 0) continue;
    }
    souk__identify_grant_cb cb = NULL;
    void *ud = NULL;
    if (!souk__idl_queue_pop(&b->q, &cb, &ud)) continue;
    b->held = true;
    b->last = now;
    b->not_before = now + l->interval;
    /* The callback usually sends the IDENTIFY and releases at once; its
     * acquire/release/cancel calls only touch bucket fields (their kicks
     * are folded into this one). */
    cb(ud);
  }
  l->in_kick = false;
  uint64_t now = idl_now(l), next = UINT64_MAX;
  if (l->day_pending) next = now + IDL_BUSY_RETRY_MS;
  for (uint32_t i = 0; i < l->nb; i++) {
    bucket_t *b = &l->b[i];
    if (b->release_pending && now + IDL_BUSY_RETRY_MS < next) next = now + IDL_BUSY_RETRY_MS;
    if (!b->q.head || b->held) continue;
    uint64_t at = l->fd < 0 ? (b->last ? b->last + l->interval : now)
                            : (b->not_before > now ? b->not_before : now);
    if (at < next) next = at;
  }
  if (next == UINT64_MAX)
    uv_timer_stop(l->timer);
  else
    uv_timer_start(l->timer, timer_cb, next > now ? next - now : 0, 0);
}

static int idl_acquire(void *self, uint32_t bucket, souk__identify_grant_cb cb, void *ud) {
  idl_t *l = self;
  if (!cb || (l->fd >= 0 && bucket >= IDL_FILE_BUCKETS)) return SOUK_EINVAL;
  bucket_t *b = idl_bucket(l, bucket);
  souk__idl_queue_push(&b->q, cb, ud);
  /* Grants come from the loop, never from inside acquire. */
  if (!l->in_kick) uv_timer_start(l->timer, timer_cb, 0, 0);
  return 0;
}

static void idl_cancel(void *self, uint32_t bucket, souk__identify_grant_cb cb, void *ud) {
  idl_t *l = self;
  if (bucket >= l->nb) return;
  souk__idl_queue_remove(&l->b[bucket].q, cb, ud);
}

static void idl_release(void *self, uint32_t bucket) {
  idl_t *l = self;
  bucket_t *b = idl_bucket(l, bucket);
  b->held = false;
  uint64_t now = idl_now(l);
  b->last = now;
  if (l->fd >= 0) {
    /* Stamp the real IDENTIFY time, which is a little after the grant. */
    uint64_t dummy;
    if (file_try(l, bucket, now, &dummy, true) < 0) b->release_pending = true;
    b->not_before = now + l->interval;
  }
  /* Later grants come from the loop, never from inside release. */
  if (!l->in_kick) uv_timer_start(l->timer, timer_cb, 0, 0);
}

static void idl_destroy(void *self) {
  idl_t *l = self;
  if (!l) return;
  for (uint32_t i = 0; i < l->nb; i++) {
    souk__idl_queue_clear(&l->b[i].q);
  }
  souk_timer_free(&l->timer);
  if (l->fd >= 0) close(l->fd);
  souk_free(l->path);
  souk_free(l->b);
  souk_free(l);
}

static void idl_count_start(void *self, int64_t wall_ms) {
  idl_t *l = self;
  int64_t hour = wall_ms / SOUK_IDL_HOUR_MS;
  if (l->fd < 0) {
    souk__idl_day_add(&l->day, hour, 1);
    return;
  }
  souk__idl_day_add(&l->pending, hour, 1);
  l->day_pending = true;
  if (file_day(l, true) < 0 && !l->in_kick) uv_timer_start(l->timer, timer_cb, IDL_BUSY_RETRY_MS, 0);
}

static void idl_starts(void *self, int64_t wall_ms, uint32_t counts[SOUK_IDL_HOURS]) {
  idl_t *l = self;
  if (l->fd >= 0) file_day(l, false); /* busy: the last read will do */
  souk__idl_day_counts(&l->day, wall_ms, counts);
  if (l->day_pending) {
    uint32_t mine[SOUK_IDL_HOURS];
    souk__idl_day_counts(&l->pending, wall_ms, mine);
    for (int i = 0; i < SOUK_IDL_HOURS; i++)
      counts[i] += mine[i];
  }
}

static const souk__identify_lock_ops_t idl_ops = {idl_acquire, idl_cancel,      idl_release,
                                                  idl_destroy, idl_count_start, idl_starts};

static idl_t *idl_new(uint32_t interval_ms, const souk_clock_t *clock) {
  idl_t *l = souk_calloc(1, sizeof *l);
  l->interval = interval_ms ? interval_ms : SOUK_IDENTIFY_INTERVAL_MS;
  l->clock = clock ? *clock : souk_clock_mono;
  l->fd = -1;
  l->timer = souk_malloc(sizeof *l->timer);
  uv_timer_init(souk_loop(), l->timer);
  l->timer->data = l;
  return l;
}

int souk__identify_lock_local(uint32_t interval_ms, const souk_clock_t *clock,
                             souk__identify_lock_t *out) {
  if (!out) return SOUK_EINVAL;
  out->ops = &idl_ops;
  out->self = idl_new(interval_ms, clock);
  return 0;
}

int souk__identify_lock_file(const char *path, uint32_t interval_ms, souk__identify_lock_t *out) {
  if (!path || !*path || !out) return SOUK_EINVAL;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    SOUK_ERROR(IDL_LOG, "cannot open the identify lock file %s: %s", path, strerror(errno));
    return SOUK_EIO;
  }
  /* Write the header once, under the lock, if the file is new. */
  if (flock(fd, LOCK_EX) == 0) {
    char hdr[IDL_HDR];
    if (pread(fd, hdr, IDL_HDR, 0) != IDL_HDR) {
      if (pwrite(fd, IDL_MAGIC, IDL_HDR, 0) != IDL_HDR)
        SOUK_WARN(IDL_LOG, "cannot write %s: %s", path, strerror(errno));
    }
    flock(fd, LOCK_UN);
  }
  /* The file's times are on the host's monotonic clock, which every
   * process shares; an injected clock would break that, so none here. */
  idl_t *l = idl_new(interval_ms, NULL);
  l->fd = fd;
  l->path = souk_strdup(path);
  out->ops = &idl_ops;
  out->self = l;
  return 0;
}
