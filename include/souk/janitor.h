/* The storage janitor: per-set retention and a total disk cap.
 *
 * Modules register data sets: a root directory whose entries (files or
 * subdirectories) are partitions, e.g. one directory per day named
 * "2026-11-20" or one file per hour "trades-2026112014.parquet".  A
 * partition's time is the end of the period its name covers (from the
 * set's pattern), or its mtime when the set has no pattern; entries whose
 * name does not match the pattern, dot files and symlinks are never
 * touched.  A root directory belongs to one set (sets sharing a root
 * would see each other's entries).  A run deletes, as whole partitions:
 *   1. every partition older than its set's retention (time < now - retention);
 *   2. then, while the partitions left exceed the cap, the oldest ones
 *      across all sets, down to cap x headroom.  The newest partition of
 *      each set is never deleted for the cap (it may be being written).
 * The decision is the pure function souk__janitor_decide() in src/ops; the executor
 * lists the real directories, calls it and deletes.  Sizes are apparent
 * sizes (st_size) summed over a partition's files.
 *
 * Threads: registration and souk_janitor_run() on the loop thread; the
 * listing and deleting run on the thread pool. */
#ifndef SOUK_JANITOR_H
#define SOUK_JANITOR_H

#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A data set.  Strings are copied by souk_janitor_register(). */
typedef struct souk_janitor_set {
  const char *name;      /* "skyblock.auctions" */
  const char *root;      /* directory holding the partitions */
  uint64_t retention_ms; /* 0: no age limit (only the cap deletes) */
  /** Partition name pattern, the whole name: literal text plus %Y (4
   * digits), %m %d %H %M %S (2 digits) and %%, e.g. "%Y-%m-%d" or
   * "trades-%Y%m%d%H.parquet"; times are UTC.  NULL: use mtime. */
  const char *pattern;
} souk_janitor_set_t;

/** Register a set.  Returns 0, SOUK_EINVAL (no name/root, bad pattern) or
 * SOUK_EEXIST. */
int souk_janitor_register(const souk_janitor_set_t *set);
/** Remove a set.  Returns 0 or SOUK_ENOTFOUND. */
int souk_janitor_unregister(const char *name);

/** Why a partition goes. */
typedef enum souk_janitor_verdict {
  SOUK_JANITOR_KEEP,
  SOUK_JANITOR_RETENTION,
  SOUK_JANITOR_CAP,
} souk_janitor_verdict_t;

/** Outcome totals of a decision. */
typedef struct souk_janitor_totals {
  uint64_t bytes_before, bytes_after;
  uint64_t freed_retention, freed_cap;
  size_t deleted_retention, deleted_cap;
  bool still_over; /* the cap could not be met (only protected partitions left) */
} souk_janitor_totals_t;

/** One deleted (or, in a dry run, to-be-deleted) partition. */
typedef struct souk_janitor_freed {
  char *set, *name;
  uint64_t bytes;
  souk_janitor_verdict_t why;
  int err; /* 0, or the SOUK_E* of a failed delete (then not counted as freed) */
} souk_janitor_freed_t;

/** Per-set totals of a run. */
typedef struct souk_janitor_set_report {
  char *name;
  size_t partitions, deleted;
  uint64_t bytes, freed;
  int list_err; /* 0, or why the root could not be listed */
} souk_janitor_set_report_t;

/** What a run did.  Free with souk_janitor_report_free(). */
typedef struct souk_janitor_report {
  souk_janitor_set_report_t *sets;
  size_t nsets;
  souk_janitor_freed_t *freed; /* oldest first, the order they were deleted in */
  size_t nfreed;
  souk_janitor_totals_t totals;
  uint64_t freed_bytes; /* actually deleted */
  size_t errors;        /* failed deletes */
  bool dry_run;
} souk_janitor_report_t;

/** Free a report's contents. */
void souk_janitor_report_free(souk_janitor_report_t *rep);
/** Append readable text: a summary line, then one line per set and per
 * deleted partition. */
void souk_janitor_report_text(const souk_janitor_report_t *rep, souk_buf_t *out);

/** Called on the loop thread when a run ends; rep is valid during the call. */
typedef void (*souk_janitor_done_cb)(const souk_janitor_report_t *rep, void *ud);
/** Run on the thread pool; done (may be NULL) gets the report, which is
 * also logged.  Returns 0, SOUK_EBUSY (a run is going) or SOUK_E*; on
 * failure done is never called. */
int souk_janitor_run(souk_janitor_done_cb done, void *ud);
#endif
