/* The command runner: one invocation from a surface to its handler and
 * back.
 *
 * A surface (the gateway or HTTP interactions and prefix messages in
 * src/discord/commands.c, the console in src/core/console.c) turns what
 * arrived into a souk__cmdrun_init_t and calls souk__cmd_invoke() or
 * souk__cmd_invoke_component().  The runner checks the call, starts the
 * deadline timers, runs the handler, and hands what the handler finishes
 * with to the surface's deliver().  It counts calls, refusals, errors and
 * latency per command.
 *
 * Deadlines: a command or component that has not finished after
 * commands.defer_after (2 s) is deferred through the surface (Discord's
 * "thinking..."), so the 3-second window is never missed; an
 * autocomplete that is late is answered with no choices; and a deferred
 * invocation still unfinished after commands.timeout (14 min, inside
 * Discord's 15-minute follow-up window) is answered with an apology.  In
 * the last two cases the handler's own finishing call later only releases
 * the context.
 *
 * Everything runs on the loop thread. */
#ifndef SOUK_CORE_CMDRUN_H
#define SOUK_CORE_CMDRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cmdreg.h"
#include "souk/cmd.h"
#include "souk/conf.h"
#include "souk/module.h"

/** The `commands` config section. */
typedef struct souk__cmd_conf {
  char *prefix;            /* default prefix of message commands */
  bool mention_prefix;     /* "@bot name ..." works as a prefix too */
  int reg;                 /* souk__cmd_register_mode_t */
  uint64_t dev_guild;      /* guild for register: guild */
  int64_t defer_after_ms;  /* deferral deadline */
  int64_t timeout_ms;      /* give-up deadline for deferred work */
  souk_conf_ids_t owners;  /* bot owners, besides the application's owners */
} souk__cmd_conf_t;

/** commands.register. */
typedef enum souk__cmd_register_mode {
  SOUK_CMD_REG_GLOBAL,
  SOUK_CMD_REG_GUILD,
  SOUK_CMD_REG_OFF,
} souk__cmd_register_mode_t;

extern const souk_conf_key_t souk__cmd_conf_keys[];
extern souk__cmd_conf_t souk__cmd_conf;

/** What the handler finished with, as a surface delivers it. */
typedef enum souk__out_kind {
  SOUK__OUT_REPLY,
  SOUK__OUT_UPDATE,
  SOUK__OUT_MODAL,
  SOUK__OUT_CHOICES,
  SOUK__OUT_ACK, /* souk_cmd_ack: a deferred update, or nothing where there is none */
} souk__out_kind_t;

typedef struct souk__out {
  souk__out_kind_t kind;
  const souk_msg_t *msg;     /* REPLY, UPDATE */
  const souk_modal_t *modal; /* MODAL */
  const souk_cmd_choice_t *choices;
  size_t nchoices;
  souk_cmd_opt_type_t choice_type; /* the focused option's type */
} souk__out_t;

/** A surface adapter.  Pointers in out are valid only during deliver. */
typedef struct souk__surface {
  const char *name;
  /** Send a deferral; 0 when it went out.  NULL: the surface has none
   * (nothing needs to be sent before the handler finishes). */
  int (*defer)(souk_cmd_ctx_t *ctx, bool ephemeral);
  /** Deliver the answer, once.  deferred says a deferral went out. */
  void (*deliver)(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred);
  /** Free ctx->surface_data; called once, as the invocation is freed. */
  void (*release)(souk_cmd_ctx_t *ctx);
} souk__surface_t;

/** Who invoked what, as the surface read it.  Strings are copied. */
typedef struct souk__cmdrun_init {
  const souk__surface_t *surface;
  void *surface_data; /* released through surface->release in every case */
  souk_cmd_kind_t kind;
  uint64_t user_id;
  const char *user_name;
  uint64_t guild_id;
  uint64_t channel_id;
  uint64_t permissions;
  uint32_t shard;
  const char *idem_key;
  uint64_t message_id;   /* the message a component was on, 0 if none */
  const char *custom_id; /* components and modals */
  const char *const *values;
  size_t nvalues;
  const souk_cmd_field_t *fields;
  size_t nfields;
} souk__cmdrun_init_t;

/** Run a parsed command (kind COMMAND or AUTOCOMPLETE).  args is moved in
 * (freed by the runner).  parse_rc is what the parser returned: when it is
 * not 0, args->error is delivered as an ephemeral refusal. */
void souk__cmd_invoke(const souk__cmdrun_init_t *in, souk_cmd_args_t *args, int parse_rc);
/** Route a component press or modal submission by in->custom_id; an
 * unknown or malformed custom_id gets a clear ephemeral reply. */
void souk__cmd_invoke_component(const souk__cmdrun_init_t *in);

/** Per-command figures, for /metrics and /help. */
typedef struct souk__cmd_stat {
  char path[3 * SOUK_CMD_NAME_MAX + 3];
  uint64_t calls, ok, errors, refused, late;
  double latency_sum_s;
  uint64_t buckets[8]; /* cumulative counts for souk__cmd_latency_bounds */
} souk__cmd_stat_t;
/** The latency histogram's upper bounds in seconds (8 of them), as a list
 * for an initializer: souk/stats.h publishes the same ones. */
#define SOUK__CMD_LATENCY_BOUNDS 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10
extern const double souk__cmd_latency_bounds[8];
size_t souk__cmd_stats_n(void);
const souk__cmd_stat_t *souk__cmd_stats_at(size_t i);

/** Outcome of one invocation, for the usage observer. */
typedef enum souk__cmd_outcome {
  SOUK__CMD_OK,
  SOUK__CMD_ERROR,   /* the handler answered with souk_cmd_errorf */
  SOUK__CMD_REFUSED, /* parse or check failed */
  SOUK__CMD_LATE,    /* the core answered for a late handler */
} souk__cmd_outcome_t;
/** Called once per finished invocation (after deliver). */
typedef void (*souk__cmd_observer_cb)(const char *path, uint64_t user_id, uint64_t guild_id,
                                      souk__cmd_outcome_t outcome, uint64_t latency_ms);
void souk__cmd_set_observer(souk__cmd_observer_cb fn);

/** Invocations still running (not yet finished by their handler). */
size_t souk__cmd_running(void);
/** At shutdown: deadline timers of invocations still running no longer
 * keep the loop alive (a handler that never finishes must not hold the
 * process for commands.timeout). */
void souk__cmd_release_loop(void);
/** Invocations not answered yet (a handler the core answered for after a
 * deadline counts as answered, though it may still be running). */
size_t souk__cmd_unanswered(void);
/** Call fn (NULL: nothing) each time the unanswered count drops to 0; fn
 * may run inside a handler's finishing call, so it should only schedule
 * work. */
void souk__cmd_set_idle_cb(void (*fn)(void));
/** Guilds the bot is in, as the surfaces count them (for /help). */
void souk__cmd_set_guild_count(uint64_t n);

/** The owners the checks use: commands.owners plus the application's
 * owners learnt at start-up (or the console's user), set with
 * souk__cmd_set_app_owners.  *ids is valid until the next call. */
void souk__cmd_set_app_owners(const uint64_t *ids, size_t n);
void souk__cmd_owners(const uint64_t **ids, size_t *n);

/** Forget every guild's own prefix (before loading them again). */
void souk__cmd_prefixes_clear(void);

#endif
