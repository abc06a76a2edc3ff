/* Core side of the storage janitor (include/souk/janitor.h is what modules
 * see): the pure decision function, partition-name parsing and the
 * executor's settings and timer. */
#ifndef SOUK_OPS_JANITOR_H
#define SOUK_OPS_JANITOR_H

#include "souk/janitor.h"
#include "souk/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One partition, as the decision function sees it. */
typedef struct souk__janitor_part {
  uint32_t set; /* index into the policy's sets */
  const char *name;
  uint64_t bytes;
  uint64_t ts_ms; /* UTC ms: end of its period, or mtime */
} souk__janitor_part_t;

/** Inputs of a decision. */
typedef struct souk__janitor_policy {
  const uint64_t *retention_ms; /* per set; 0: none */
  size_t nsets;
  uint64_t now_ms;    /* UTC ms */
  uint64_t cap_bytes; /* 0: no cap */
  double headroom;    /* delete down to cap x headroom (0 or > 1: 1) */
} souk__janitor_policy_t;

/** The pure decision: verdict[i] for each of the n parts, and totals (may
 * be NULL).  Ties in time are broken by set index, then name. */
void souk__janitor_decide(const souk__janitor_part_t *parts, size_t n,
                          const souk__janitor_policy_t *pol, souk_janitor_verdict_t *verdict,
                          souk_janitor_totals_t *totals);

/** Parse name against pattern: 0 with *end_ms = end of the period it names
 * (UTC ms), or SOUK_EPARSE. */
int souk__janitor_parse_name(const char *pattern, const char *name, uint64_t *end_ms);

/** Executor settings. */
typedef struct souk__janitor_opts {
  uint64_t cap_bytes;       /* 0: no cap */
  double headroom;          /* 0: 0.9 */
  bool dry_run;             /* decide and report, delete nothing */
  uint64_t interval_ms;     /* timer period (0: 4 hours) */
  const souk_clock_t *wall; /* UTC ms clock; NULL: souk_unix_ms */
} souk__janitor_opts_t;

/** (Re)initialise: forgets sets.  opts may be NULL. */
void souk__janitor_init(const souk__janitor_opts_t *opts);
/** Change cap, headroom and dry run (run-time config); the next run uses
 * them. */
void souk__janitor_set_limits(uint64_t cap_bytes, double headroom, bool dry_run);
/** Stop the timer and free the sets (a run out on the pool finishes). */
void souk__janitor_shutdown(void);
/** List, decide and delete now, blocking (tests, `souk janitor`).  Fills
 * *rep.  Returns 0 or SOUK_EBUSY (a run is going). */
int souk__janitor_run_sync(souk_janitor_report_t *rep);

/** Run every interval from a uv timer on souk_loop().  Returns 0 or SOUK_E*. */
int souk__janitor_start(void);
/** Stop the timer. */
void souk__janitor_stop(void);

#endif
