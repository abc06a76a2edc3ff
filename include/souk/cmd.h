/* Commands: the tables a module declares, the arguments a handler reads,
 * and what a handler answers with (the core's registry, parser and checks
 * behind them are in src/core/cmdreg.h).
 *
 * A module lists its commands in one const table ending in a zero entry
 * (DESIGN.md "A module").  The core validates the table against Discord's
 * rules when it is registered, parses a slash interaction's `data` or a
 * prefix/console line into one souk_cmd_args_t, checks types, bounds,
 * permissions and cooldowns, and only then calls the handler, so handlers
 * never see the surface a command came from.
 *
 * Ownership: tables are borrowed for as long as they are registered (they
 * are normally static const).  A souk_cmd_args_t owns its strings; release
 * them with souk_cmd_args_free().  Pointers into args stay valid until
 * then.  Everything here runs on the loop thread. */
#ifndef SOUK_CMD_H
#define SOUK_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "souk/json.h"

struct souk_buf;

/** Discord's limits, from the application-command and component docs. */
#define SOUK_CMD_NAME_MAX      32   /* command, subcommand and option names */
#define SOUK_CMD_DESC_MAX      100  /* descriptions, in characters */
#define SOUK_CMD_OPTIONS_MAX   25   /* options (or subcommands) per level */
#define SOUK_CMD_CHOICES_MAX   25   /* choices per option */
#define SOUK_CMD_STRING_MAX    6000 /* max_length of a string option */
#define SOUK_CMD_CUSTOM_ID_MAX 100  /* a component's custom_id, in characters */

/** Command flags. */
#define SOUK_CMD_GUILD_ONLY (1u << 0) /* refused in DMs */
#define SOUK_CMD_OWNER_ONLY (1u << 1) /* only the bot's owners may run it */
#define SOUK_CMD_EPHEMERAL  (1u << 2) /* a deferred reply is ephemeral (private) */
#define SOUK_CMD_HIDDEN     (1u << 3) /* left out of /help */

/** A few Discord permission bits (the docs' "Bitwise Permission Flags"). */
#define SOUK_PERM_KICK_MEMBERS    (UINT64_C(1) << 1)
#define SOUK_PERM_BAN_MEMBERS     (UINT64_C(1) << 2)
#define SOUK_PERM_ADMINISTRATOR   (UINT64_C(1) << 3)
#define SOUK_PERM_MANAGE_CHANNELS (UINT64_C(1) << 4)
#define SOUK_PERM_MANAGE_GUILD    (UINT64_C(1) << 5)
#define SOUK_PERM_MANAGE_MESSAGES (UINT64_C(1) << 13)
#define SOUK_PERM_MANAGE_ROLES    (UINT64_C(1) << 28)

/** Option types, numbered as Discord numbers them, so building application
 * commands needs no translation.  1 and 2 are Discord's SUB_COMMAND and
 * SUB_COMMAND_GROUP; they come from struct souk_command's subcommands,
 * never from an option table. */
typedef enum souk_cmd_opt_type {
  SOUK_OPT_NONE = 0,
  SOUK_OPT_STRING = 3,
  SOUK_OPT_INTEGER = 4,
  SOUK_OPT_BOOLEAN = 5,
  SOUK_OPT_USER = 6,
  SOUK_OPT_CHANNEL = 7,
  SOUK_OPT_ROLE = 8,
  SOUK_OPT_NUMBER = 10,
} souk_cmd_opt_type_t;

/** One choice: the name a user sees (1-100 characters) and the value the
 * handler gets, written as text for every type ("buy", "5", "0.25"); the
 * registry checks that it parses as the option's type. */
typedef struct souk_cmd_choice {
  const char *name;
  const char *value;
} souk_cmd_choice_t;

/** One option of a command.  Bounds apply only where has_min / has_max is
 * set, because 0 is a meaningful bound; SOUK_OPT_INT_RANGE and friends set
 * both.  min_length / max_length apply to strings, 0 meaning "no limit". */
typedef struct souk_cmd_option {
  const char *name;        /* 1-32 of [-_a-z0-9] */
  const char *description; /* 1-100 characters */
  souk_cmd_opt_type_t type;
  bool required;     /* required options come before optional ones */
  bool autocomplete; /* the command's autocomplete handler suggests values */
  bool has_min, has_max;
  int64_t min_int, max_int;         /* SOUK_OPT_INTEGER */
  double min_num, max_num;          /* SOUK_OPT_NUMBER: not money, see DESIGN.md */
  uint16_t min_length, max_length;  /* SOUK_OPT_STRING, in characters */
  const souk_cmd_choice_t *choices; /* NULL, or a table ending in {NULL} */
} souk_cmd_option_t;

/** Designated-initialiser helpers for bounded options. */
#define SOUK_OPT_INT_RANGE(lo, hi)                                                                 \
  .has_min = true, .min_int = (lo), .has_max = true, .max_int = (hi)
#define SOUK_OPT_NUM_RANGE(lo, hi)                                                                 \
  .has_min = true, .min_num = (lo), .has_max = true, .max_num = (hi)

/** One parsed argument.  name points into the command's option table;
 * text is owned by the enclosing souk_cmd_args_t. */
typedef struct souk_cmd_arg {
  const char *name;
  souk_cmd_opt_type_t type;
  bool focused; /* autocomplete: the option the user is typing in */
  int64_t i;    /* SOUK_OPT_INTEGER */
  double num;   /* SOUK_OPT_NUMBER */
  bool b;       /* SOUK_OPT_BOOLEAN */
  uint64_t id;  /* SOUK_OPT_USER, _CHANNEL, _ROLE: the snowflake */
  /** SOUK_OPT_STRING; for a focused option, what was typed; for
   * SOUK_OPT_USER, the user's display name when the surface knows it
   * (slash commands' resolved users, a message's mentions), else NULL. */
  char *text;
  bool bot; /* SOUK_OPT_USER: the surface knows the user is a bot */
  /** SOUK_OPT_USER: the surface resolved the user (a slash command's
   * resolved data, a message's mention), so bot is known; false for an id
   * typed as text (a prefix command, the console, a kept command run
   * again), which says nothing about who it is. */
  bool resolved;
} souk_cmd_arg_t;

struct souk_command;

/** The arguments of one invocation, whatever surface it came from. */
typedef struct souk_cmd_args {
  const struct souk_command *top;       /* the registered top-level command */
  const struct souk_command *group;     /* a subcommand group, or NULL */
  const struct souk_command *cmd;       /* the leaf that has the handler */
  const char *module;                   /* owner of top */
  char path[3 * SOUK_CMD_NAME_MAX + 3]; /* "market buy", for messages */
  souk_cmd_arg_t v[SOUK_CMD_OPTIONS_MAX];
  size_t n;
  /** After a parse or check fails: the user-facing reply, one sentence. */
  char error[256];
} souk_cmd_args_t;

/** What started a handler. */
typedef enum souk_cmd_kind {
  SOUK_CMD_KIND_COMMAND,      /* a slash command, prefix command or console line */
  SOUK_CMD_KIND_COMPONENT,    /* a button press or a select-menu pick */
  SOUK_CMD_KIND_MODAL,        /* a submitted modal */
  SOUK_CMD_KIND_AUTOCOMPLETE, /* the user is typing an option that autocompletes */
} souk_cmd_kind_t;

/** One submitted modal field. */
typedef struct souk_cmd_field {
  const char *custom_id;
  const char *value;
} souk_cmd_field_t;

/** The context a handler gets for one invocation.  The surface (a gateway
 * or HTTP interaction, a prefix message, the console) fills it; the
 * handler finishes it exactly once with one of the souk_cmd_reply*()
 * family below, now or later from a callback on the loop thread.  Every
 * field stays valid until then; after the finishing call ctx is gone. */
typedef struct souk_cmd_ctx {
  souk_cmd_kind_t kind;
  const souk_cmd_args_t *args; /* commands and autocomplete; NULL otherwise */
  const char *module;          /* the module that owns the command or component */
  uint64_t user_id;
  const char *user_name; /* display name for messages, never empty */
  uint64_t guild_id;     /* 0 in DMs */
  uint64_t channel_id;
  uint64_t permissions; /* the member's computed permission bits */
  uint32_t shard;       /* gateway shard that received it (0 elsewhere) */
  const char *surface;  /* "gateway", "http", "prefix" or "console", for logs */
  /** A key unique to what caused this invocation ("ix:<interaction id>",
   * "msg:<message id>", "console:<n>"): a redelivered or retried event
   * carries the same key, so writes keyed by it apply once. */
  const char *idem_key;
  /* Components and modals. */
  /** The message the component was on (a modal opened from a component:
   * that message), so a handler can acknowledge the press at once with
   * souk_cmd_ack() and edit the message later (souk/discord.h); 0 for
   * commands and for a modal opened by a command. */
  uint64_t message_id;
  const char *custom_id;         /* the whole custom_id */
  const char *state;             /* custom_id after the component's prefix */
  const char *const *values;     /* select-menu picks */
  size_t nvalues;
  const souk_cmd_field_t *fields; /* modal fields */
  size_t nfields;
  void *surface_data; /* owned by the surface adapter */
} souk_cmd_ctx_t;

/* --- Messages a handler sends ------------------------------------------- */

/** Discord's limits; longer text is split (content) or cut with an
 * ellipsis (embeds, labels) by the core, never refused. */
#define SOUK_MSG_CONTENT_MAX 2000
#define SOUK_MSG_EMBEDS_MAX  10
#define SOUK_MSG_ROWS_MAX    5
#define SOUK_MSG_ROW_BUTTONS 5

/** A field of an embed. */
typedef struct souk_embed_field {
  const char *name;
  const char *value;
  bool inline_field;
} souk_embed_field_t;

/** An embed: every member optional. */
typedef struct souk_embed {
  const char *title;
  const char *description;
  const char *url;
  uint32_t color; /* 0xRRGGBB; 0 means none */
  const char *footer;
  const souk_embed_field_t *fields;
  size_t nfields;
} souk_embed_t;

/** Button styles (Discord's numbers; link buttons are not offered). */
typedef enum souk_button_style {
  SOUK_BUTTON_PRIMARY = 1,
  SOUK_BUTTON_SECONDARY = 2,
  SOUK_BUTTON_SUCCESS = 3,
  SOUK_BUTTON_DANGER = 4,
} souk_button_style_t;

/** An option of a select menu. */
typedef struct souk_select_option {
  const char *label;
  const char *value;
  const char *description; /* may be NULL */
} souk_select_option_t;

/** A button (options NULL) or a string select menu (options set).  The
 * core lays them out: up to five buttons per row, a select on a row of its
 * own, new_row to start a row early. */
typedef struct souk_component {
  const char *custom_id; /* made with souk_cmd_custom_id() */
  const char *label;     /* button label, or the select's placeholder */
  souk_button_style_t style;
  bool disabled;
  bool new_row;
  const souk_select_option_t *options;
  size_t noptions;
} souk_component_t;

/** A message: any of content, embeds and components. */
typedef struct souk_msg {
  const char *content;
  bool ephemeral; /* only the caller sees it (plain where a surface can't) */
  const souk_embed_t *embeds;
  size_t nembeds;
  const souk_component_t *components;
  size_t ncomponents;
  /* souk_discord_send only, optional: a name for what this message is
   * (such as "sum" and a hash of the guild and day), sent with the channel
   * as its enforced nonce: Discord drops a second post of the same name to
   * the same channel for a few minutes, so a retry after a failure that
   * was not one, or after a restart, does not post it twice, while one
   * name posted to several channels is posted to each.  NULL: unique to
   * the call. */
  const char *key;
} souk_msg_t;

/** A text field of a modal. */
typedef struct souk_modal_field {
  const char *custom_id;
  const char *label; /* up to 45 characters */
  bool paragraph;    /* multi-line */
  bool required;
  uint16_t min_length, max_length; /* 0: Discord's defaults */
  const char *placeholder;
  const char *value; /* pre-filled */
} souk_modal_field_t;

/** A modal form: up to five fields; its submission is routed by custom_id
 * like a component's. */
typedef struct souk_modal {
  const char *custom_id;
  const char *title; /* up to 45 characters */
  const souk_modal_field_t *fields;
  size_t nfields;
} souk_modal_t;

/* --- Finishing an invocation (exactly one of these per ctx) ------------- */

/** Reply with a message.  For a component press this sends a new message
 * (use souk_cmd_update to change the pressed message).  Returns 0, or
 * SOUK_EINVAL for a NULL or empty message (ctx is still finished, with a
 * generic error reply, so no invocation is left hanging). */
int souk_cmd_reply(souk_cmd_ctx_t *ctx, const souk_msg_t *msg);
/** Reply with printf-formatted plain text. */
int souk_cmd_replyf(souk_cmd_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Reply with a user-facing error, ephemeral where possible, counted as an
 * error of the command (a refusal the user caused is a plain reply). */
int souk_cmd_errorf(souk_cmd_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Replace the message a component was pressed on (pagination), or the
 * message whose button opened a submitted form; anywhere else the same as
 * souk_cmd_reply. */
int souk_cmd_update(souk_cmd_ctx_t *ctx, const souk_msg_t *msg);
/** Finish a component press (or a modal submitted from one) with nothing
 * to say yet: Discord's deferred update (interaction response type 6), so
 * the click is acknowledged within its 3 seconds and the message stays as
 * it is until the handler edits it (souk_discord_edit_latest() with
 * ctx->message_id, copied before this call).  A no-op finish on the
 * console and for prefix commands.  Anything else (a command, a modal
 * opened by a command) has no message to defer: ctx is finished with a
 * generic error reply and SOUK_EINVAL is returned. */
int souk_cmd_ack(souk_cmd_ctx_t *ctx);
/** Show a modal.  Only a command or a component may open one, and only
 * before the core deferred it; the console prompts for the fields, and a
 * prefix command answers that the slash command is needed. */
int souk_cmd_modal(souk_cmd_ctx_t *ctx, const souk_modal_t *modal);
/** Answer an autocomplete request with up to 25 choices (more are cut);
 * values are text and are sent typed as the focused option's type. */
int souk_cmd_choices(souk_cmd_ctx_t *ctx, const souk_cmd_choice_t *choices, size_t n);
/** A submitted modal field's value, or NULL. */
const char *souk_cmd_field_value(const souk_cmd_ctx_t *ctx, const char *custom_id);

/** Could the caller of ctx run cmd (guild-only, owner-only and permission
 * checks, no cooldown)?  /help uses it to list only what one may run. */
bool souk_cmd_may_run(const souk_cmd_ctx_t *ctx, const struct souk_command *cmd);
/** Registered top-level commands, for /help: count, and command i with its
 * module (NULL past the end). */
size_t souk_cmd_count(void);
const struct souk_command *souk_cmd_at(size_t i, const char **module);
/** Commands served since start (every finished invocation). */
uint64_t souk_cmd_served(void);
/** Guilds the bot is in (0 in the console). */
uint64_t souk_cmd_guilds(void);
/** In `souk console`: the console's own channel (every line typed there
 * comes from it); 0 in every other command, so a module can tell it runs
 * offline (skyblock then picks its simulated market). */
uint64_t souk_cmd_console_channel(void);

/** Longest prefix a guild may set for message commands, in bytes. */
#define SOUK_CMD_PREFIX_MAX 8
/** The prefix of message commands in a guild: the one it set, or
 * commands.prefix.  Valid until the next souk_cmd_set_prefix(). */
const char *souk_cmd_prefix(uint64_t guild_id);
/** Remember a guild's own prefix in this process (NULL or "" restores the
 * default).  The caller keeps it in the store (kv namespace "prefix", key
 * the guild id) so it survives restarts.  Returns 0, or SOUK_EINVAL for a
 * prefix longer than SOUK_CMD_PREFIX_MAX or holding a space. */
int souk_cmd_set_prefix(uint64_t guild_id, const char *prefix);

/** Runs a command; must finish ctx exactly once, now or from a callback. */
typedef void (*souk_cmd_handler_cb)(souk_cmd_ctx_t *ctx);
/** Suggests values for the focused option (souk_cmd_focused(ctx->args)). */
typedef void (*souk_cmd_autocomplete_cb)(souk_cmd_ctx_t *ctx);

/** A command, a subcommand group or a subcommand.  A command either has
 * subcommands (then no options and no handler) or is a leaf with a handler.
 * Subcommands nest at most two deep (group -> subcommand), as in Discord.
 * Flags and permissions of a parent apply to its subcommands as well. */
struct souk_command {
  const char *name;                       /* 1-32 of [-_a-z0-9] */
  const char *description;                /* 1-100 characters */
  const char *category;                   /* /help groups by it; NULL means "General" */
  const char *const *usage;               /* examples, NULL-terminated; may be NULL */
  const souk_cmd_option_t *options;       /* ends with a zero entry; may be NULL */
  const struct souk_command *subcommands; /* ends with a zero entry */
  uint32_t flags;                         /* SOUK_CMD_GUILD_ONLY | SOUK_CMD_OWNER_ONLY */
  uint64_t permissions;                   /* Discord permission bits the member needs */
  uint32_t cooldown_ms;                   /* per user; 0 means none */
  souk_cmd_handler_cb handler;
  souk_cmd_autocomplete_cb autocomplete;
  /** A gate (souk_cmd_gate_register) that must let the caller through
   * before the handler runs, e.g. "tos"; NULL for none.  The most specific
   * gate along the command's chain applies. */
  const char *gate;
};
typedef struct souk_command souk_command_t;

/** A component handler: custom_ids starting with prefix go to fn, with
 * ctx->state set to the rest of the custom_id. */
typedef struct souk_cmd_component {
  const char *prefix; /* "market:"; NULL ends a table */
  souk_cmd_handler_cb fn;
} souk_cmd_component_t;

/* --- Gates: a module's check before other modules' handlers --------------- */

/** A gate runs after the core's checks (guild, owner, permissions,
 * cooldown) and before the handler of every command that names it.  It
 * either lets the invocation go on with souk_cmd_gate_pass() or finishes
 * it itself with any souk_cmd_reply*() call (a prompt or a refusal), now
 * or later from a callback on the loop thread.  ctx->args is the parsed
 * command, so a gate can keep it (souk_cmd_args_line) and run it again
 * later (souk_cmd_redispatch), e.g. after the user accepted something. */
typedef void (*souk_cmd_gate_cb)(souk_cmd_ctx_t *ctx, void *ud);

/** Register gate name (1-32 of [-_a-z0-9]) for this process; a module
 * does it from init.  A command naming a gate nobody registered is
 * refused ("not available"), never run unchecked.  Returns 0, SOUK_EINVAL
 * or SOUK_EEXIST. */
int souk_cmd_gate_register(const char *name, souk_cmd_gate_cb fn, void *ud);
/** The gate lets ctx through: its handler runs now, inside this call. */
void souk_cmd_gate_pass(souk_cmd_ctx_t *ctx);

/** Append the command and arguments of args to out as one text line that
 * the text parser reads back to the same args ("coins pay user:1234
 * amount:50"); strings are quoted.  0, or SOUK_EINVAL for args without a
 * command. */
int souk_cmd_args_line(const souk_cmd_args_t *args, struct souk_buf *out);
/** Run the command written in line (souk_cmd_args_line's form) as the
 * continuation of ctx, a button press or form submission: it is parsed,
 * checked (cooldowns included) and gated like a new command, then its
 * handler finishes ctx; a parse or check failure finishes ctx with the
 * refusal.  ctx->kind becomes SOUK_CMD_KIND_COMMAND, so the handler's
 * reply is a new message.  idem_key (copied; NULL keeps the press's)
 * becomes ctx->idem_key: pass the key of the invocation the line was kept
 * from, so what the command writes is keyed by what caused it and applies
 * once, whichever press runs it and even when the original event is
 * redelivered after the gate lets it through. */
void souk_cmd_redispatch(souk_cmd_ctx_t *ctx, const char *line, const char *idem_key);

/* --- Aliases: other names for commands, in prefix messages and the console */

/** An alias: text starting with the words of name runs target, with the
 * rest of the text appended ("cache clear market:*" runs "admin
 * cache-clear market:*").  name is 1-3 words of [-_a-z0-9], target a
 * command path; slash commands never see aliases.  Module tables end with
 * a zero entry. */
typedef struct souk_cmd_alias {
  const char *name;   /* "db health" */
  const char *target; /* "admin db health" */
} souk_cmd_alias_t;

/** Registered aliases, for /help: count, and alias i with its module
 * (NULL past the end). */
size_t souk_cmd_alias_count(void);
const souk_cmd_alias_t *souk_cmd_alias_at(size_t i, const char **module);

/* --- Reading arguments (for handlers) ----------------------------------- */

/** The argument called name, or NULL when it was not given. */
const souk_cmd_arg_t *souk_cmd_arg(const souk_cmd_args_t *args, const char *name);
/** Integer argument, or def when absent. */
int64_t souk_cmd_arg_int(const souk_cmd_args_t *args, const char *name, int64_t def);
/** Number argument, or def when absent. */
double souk_cmd_arg_num(const souk_cmd_args_t *args, const char *name, double def);
/** Boolean argument, or def when absent. */
bool souk_cmd_arg_bool(const souk_cmd_args_t *args, const char *name, bool def);
/** Snowflake of a user/channel/role argument, or 0 when absent. */
uint64_t souk_cmd_arg_id(const souk_cmd_args_t *args, const char *name);
/** String argument (owned by args), or def when absent. */
const char *souk_cmd_arg_str(const souk_cmd_args_t *args, const char *name, const char *def);
/** The focused argument of an autocomplete request, or NULL. */
const souk_cmd_arg_t *souk_cmd_focused(const souk_cmd_args_t *args);
/** Release the strings args owns and empty it; safe on a zeroed args. */
void souk_cmd_args_free(souk_cmd_args_t *args);

/** Write text a user typed (s, n bytes) into out (cap >= 1 bytes) as a
 * reply quotes it: at most 24 characters (cut on a UTF-8 boundary, with
 * "..." after), each backtick made a quote so the value stays one code
 * span.  Control characters are left for the runner, which escapes them
 * in every reply.  Returns out.  The core's option checks quote this way,
 * and modules' own checks should too, so every such reply reads alike. */
const char *souk_cmd_quote(char *out, size_t cap, const char *s, size_t n);

/** Write "prefix" + state into out (cap bytes) as a custom_id.  Returns 0,
 * or SOUK_ETOOBIG when it would exceed Discord's 100 characters (out is
 * then empty) or cap. */
int souk_cmd_custom_id(char *out, size_t cap, const char *prefix, const char *state);

#endif
