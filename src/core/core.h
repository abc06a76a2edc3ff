/* Core internals shared by the program's wiring (src/app), the dispatcher
 * and the console.  Modules never include this file. */
#ifndef SOUK_CORE_CORE_H
#define SOUK_CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "souk/conf.h"
#include "souk/module.h"

/** The `core` config section. */
typedef struct souk__core_conf {
  char *data_dir;   /* state files, lock files, the SQLite store */
  int log_level;    /* souk_log_level_t */
  int log_format;   /* souk_log_format_t */
  char *log_file;   /* also log to this file (run and console); NULL: stderr only */
  int64_t shutdown_grace_ms; /* how long SIGTERM waits for in-flight replies */
} souk__core_conf_t;

/** Key table of the `core` section. */
extern const souk_conf_key_t souk__core_conf_keys[];
/** Live values of the `core` section. */
extern souk__core_conf_t souk__core_conf;

/** Subscribe every handler of table (ends with event NULL; borrowed until
 * removed) after those already subscribed. */
void souk__dispatch_add(const souk_event_handler_t *table);
/** Unsubscribe the handlers of table. */
void souk__dispatch_remove(const souk_event_handler_t *table);
/** Unsubscribe everything and reset the count (tests). */
void souk__dispatch_clear(void);
/** Dispatch one event to every handler subscribed to it, in the order
 * the tables were added.  Counts events. */
void souk__dispatch(const souk_event_t *ev);
/** Total events dispatched since start. */
uint64_t souk__dispatch_count(void);

/** Tune the C library's heap for souk: one malloc arena for every thread
 * (unless MALLOC_ARENA_MAX or GLIBC_TUNABLES sets the count).  Call first
 * thing in main, before any thread starts. */
void souk__heap_init(void);
/** Start the heap trimmer on the loop: once a second, when at least
 * 64 KiB more of the heap is free than at its last look or trim, it gives
 * the free pages back to the kernel (malloc_trim).  Does not keep the loop
 * alive.  Returns 0 or SOUK_E*. */
int souk__heap_trimmer_start(void);
/** Stop the heap trimmer (closes its timer). */
void souk__heap_trimmer_stop(void);
/** One look of the trimmer, as the timer takes it; true when it trimmed
 * (exposed for tests). */
bool souk__heap_trim_step(void);

/** Console adapter: read lines from stdin, dispatch each as a message from
 * a fixed console user, print replies to stdout.  on_eof is called once
 * when stdin ends.  Returns 0 or SOUK_E*. */
int souk__console_start(void (*on_eof)(void));
/** Say, before modules start, whether this process is `souk console`
 * (souk_cmd_console_channel() answers by it). */
void souk__console_set_mode(bool console);
/** Stop reading stdin and release the console's handles. */
void souk__console_stop(void);

struct souk_buf;
/** One choice a number typed on the console presses: a button, or a select
 * menu whose option values are picked with "N.K". */
typedef struct souk__console_choice {
  const char *custom_id;
  bool disabled;
  const char *const *values;
  size_t nvalues;
} souk__console_choice_t;
/** Make c[0..n) the choices typed numbers press (1-based), on behalf of
 * message message_id (a press carries it as ctx->message_id).  Copied. */
void souk__console_set_choices(const souk__console_choice_t *c, size_t n, uint64_t message_id);
/** A fresh made-up message id (a valid snowflake no real message has). */
uint64_t souk__console_message_id(void);
/** Append every non-empty line of text to b, each after lead (embeds are
 * framed with "| "). */
void souk__console_put_lines(struct souk_buf *b, const char *lead, const char *text);
/** Print text on the console, redrawing a half-typed line around it. */
void souk__console_print(const char *text, size_t len);

/** Set what souk_conf_reload() runs (main's SIGHUP handler). */
void souk__set_reload_hook(int (*fn)(struct souk_buf *out));
/** What souk_conf_set() calls (main.c sets it). */
void souk__set_conf_set_hook(int (*fn)(const char *key, const char *value, uint64_t by_user,
                                       char *err, size_t errcap));
/** What souk_conf_shared() asks (main.c sets it when changes are shared
 * through Redis). */
void souk__set_conf_shared_hook(int (*fn)(void));
/** Render every key of secs as a Markdown table (`souk config-keys`). */
void souk__config_keys_markdown(const souk_conf_section_t *secs, size_t nsecs,
                                struct souk_buf *out);

#endif
