/* The scanner module's shared state, between scanner.c (the module's
 * contact with the core: config, start and stop, the store, metrics,
 * health, events) and scanner_cmds.c (the /scan commands and the top-list
 * posts).  Loop thread only. */
#ifndef SCANNER_INT_H
#define SCANNER_INT_H

#include "scan.h"
#include "score.h"
#include "souk/cmd.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Values of the `scanner` config section. */
typedef struct scanner_conf {
  bool enabled;
  int source; /* scanner_source_t */
  char *url, *file, *quote;
  int64_t sim_seed;
  int64_t period_ms, timeout_ms, backoff_max_ms;
  int64_t top;
  int64_t post_every_ms;
  double w_turnover, w_move, w_funding, w_oi;
  uint64_t channel; /* bot-wide channel for top-list changes; 0: none */
} scanner_conf_t;

extern scanner_conf_t scanner_conf;

/** The module's running state. */
typedef struct scanner_state {
  bool started;
  souk_store_t *store; /* from the init context; NULL: no store */
  scan_t *scan;
  /* The top list last posted (what a change is measured against), kept in
   * the store so a restart does not post it again. */
  scanner_top_t posted;
  uint64_t posted_at; /* unix ms of the schedule clock; 0 never */
  bool posted_loaded; /* the store was read (or there is none) */
  uint64_t posts, post_failures;
} scanner_state_t;

extern scanner_state_t scanner_g;

/** The commands (scanner_cmds.c). */
extern const souk_command_t scanner_commands[];

/** After a good scan: post the changes of the top list when it differs
 * from the one last posted and post_every allows (scanner_cmds.c). */
void scanner_maybe_post(const scanner_ranked_t *r, size_t n);
/** Save the posted list to the store (scanner.c). */
void scanner_save_posted(void);
/** The weights from the config. */
scanner_weights_t scanner_weights(void);

#endif
