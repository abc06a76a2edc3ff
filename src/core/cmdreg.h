/* The core side of souk/cmd.h: the command registry, the parser of
 * interactions and text commands, and the checks before a handler runs.
 * Modules never include this file: they declare tables (souk/cmd.h) and
 * the module registry registers them.  Loop thread only. */
#ifndef SOUK_CORE_CMDREG_H
#define SOUK_CORE_CMDREG_H

#include "souk/cmd.h"
#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Validate a module's command table against Discord's rules and add it.
 * All or nothing: on failure nothing is added, the reason is logged and
 * kept for souk__cmd_last_error().  Returns 0, SOUK_EINVAL (a rule broken)
 * or SOUK_EEXIST (a name already registered).  cmds and module are
 * borrowed until souk__cmd_clear(). */
int souk__cmd_register(const struct souk_command *cmds, const char *module);
/** The reason the last souk__cmd_register() failed ("" if none). */
const char *souk__cmd_last_error(void);
/** Top-level command by name, or NULL; *module is set when not NULL. */
const struct souk_command *souk__cmd_find(const char *name, const char **module);
/** Command by path ("market", "buy"): n names, 1 to 3.  NULL if absent. */
const struct souk_command *souk__cmd_lookup(const char *const *path, size_t n);
/** Number of registered top-level commands. */
size_t souk__cmd_count(void);
/** Top-level command i in registration order (for /help and application
 * command building), or NULL past the end; *module is set when not NULL. */
const struct souk_command *souk__cmd_at(size_t i, const char **module);
/** Forget every command, component prefix and cooldown. */
void souk__cmd_clear(void);

/** Parse an interaction's `data` object (token data of j): the command
 * name, nested SUB_COMMAND_GROUP / SUB_COMMAND options and typed values.
 * With autocomplete set, values are not validated and the focused option
 * keeps its typed text.  Returns 0, SOUK_ENOTFOUND (unknown command) or
 * SOUK_EINVAL, with args->error set to the reply either way.  Free args
 * with souk_cmd_args_free() whatever the result. */
int souk__cmd_parse_interaction(const souk_json_t *j, int data, bool autocomplete,
                                souk_cmd_args_t *args);
/** Parse a prefix message's text after the prefix, or a console line (a
 * leading '/' is skipped): `name [group] [sub] arg "quoted arg" key:value
 * key:"quoted value"`.  Same results as souk__cmd_parse_interaction(). */
int souk__cmd_parse_text(const char *text, size_t len, souk_cmd_args_t *args);

/** What a surface knows of a user named in the arguments: every
 * SOUK_OPT_USER argument with this id gets the display name (copied; may
 * be NULL) and the bot flag. */
void souk__cmd_args_user(souk_cmd_args_t *args, uint64_t id, const char *name, bool bot);

/** Who is calling, for souk__cmd_check(). */
typedef struct souk__cmd_caller {
  uint64_t user_id;
  uint64_t guild_id;      /* 0 in DMs */
  uint64_t permissions;   /* computed for the member in the channel */
  const uint64_t *owners; /* the bot's owners */
  size_t nowners;
} souk__cmd_caller_t;

/** Checks before the handler runs, in order: guild-only, owner-only,
 * permissions (ADMINISTRATOR implies all), then the per-user cooldown,
 * which it starts when everything passes.  Returns 0, or SOUK_EFORBIDDEN /
 * SOUK_ERATELIMIT with args->error set to the reply. */
int souk__cmd_check(souk_cmd_args_t *args, const souk__cmd_caller_t *who);
/** Replace the monotonic millisecond clock the cooldowns use (tests); NULL
 * restores the real one. */
void souk__cmd_set_clock(uint64_t (*now_ms)(void));

/** Add a module's alias table.  All or nothing; names must be valid and
 * not registered yet (SOUK_EINVAL / SOUK_EEXIST, the reason kept for
 * souk__cmd_last_error).  Targets are checked by
 * souk__cmd_aliases_check() once every command is registered. */
int souk__cmd_alias_register(const souk_cmd_alias_t *table, const char *module);
/** Check that every alias's target is a runnable command (a leaf) and no
 * alias is only another name of the very command it names.  0 or
 * SOUK_EINVAL (logged). */
int souk__cmd_aliases_check(void);
/** The alias whose words start text[0..len), the longest if several:
 * returns it and sets *used to the bytes its words took, or NULL. */
const souk_cmd_alias_t *souk__cmd_alias_match(const char *text, size_t len, size_t *used);
/** The gate registered as name: its function and ud, or NULL. */
souk_cmd_gate_cb souk__cmd_gate_find(const char *name, void **ud);

/** Add a module's component table.  Prefixes must be 1-99 characters and
 * unique.  Returns 0, SOUK_EINVAL or SOUK_EEXIST; borrowed like commands. */
int souk__cmd_component_register(const souk_cmd_component_t *table, const char *module);
/** A routed custom_id. */
typedef struct souk__cmd_route {
  const souk_cmd_component_t *component;
  const char *module;
  const char *state; /* points into the custom_id, after the prefix */
} souk__cmd_route_t;
/** Find the component whose prefix starts custom_id (the longest wins).
 * Returns 0, SOUK_ENOTFOUND, or SOUK_EINVAL for a custom_id longer than
 * 100 characters (Discord never sends one). */
int souk__cmd_route_custom_id(const char *custom_id, souk__cmd_route_t *out);

#endif
