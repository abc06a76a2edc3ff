/* Per-guild and per-user settings that modules declare.
 *
 * A module lists its settings in a table on souk_module_t (`.settings`),
 * like its config keys: a key prefixed with the module's name, a scope
 * (guild or user), a type with its bounds, a default, a label and a
 * description for people, optionally a bot-wide config key whose value is
 * the default, and optionally the step of the setup wizard (`/setup
 * server` walks guild settings, `/setup user` user settings) that asks for
 * it.  The core keeps the values in one store table (scope id, key, value
 * as text, who set it, when), validates every write with the config
 * file's rules (the same messages), and holds every set value in memory,
 * so reads are synchronous and cheap in any handler.  Only guilds and
 * users that set something cost memory: everything else reads defaults.
 *
 * Value in effect, lowest to highest: the setting's own default < the
 * bot-wide config key's value (when the setting names one and the
 * operator set it) < a value set for this guild or user.
 *
 * Several processes can share one store: a change made by one reaches the
 * others when they next re-read changed rows (every minute; the
 * scale-out work invalidates through Redis in between).
 *
 * Threads: loop thread only.  Writes go to the store on the thread pool;
 * reads never block.
 *
 * Ownership: tables are borrowed for the life of the process (static
 * const).  Strings returned are owned by the registry: valid until that
 * value changes (a set or reset of that key for that scope, here or read
 * from another process) and at least until the calling handler returns. */
#ifndef SOUK_SETTINGS_H
#define SOUK_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Whose value it is: a guild's (scope id = guild id) or a user's (scope
 * id = user id, across every guild). */
typedef enum souk_setting_scope {
  SOUK_SETTING_GUILD = 1,
  SOUK_SETTING_USER = 2,
} souk_setting_scope_t;

/** Types, and how text is read (as in the config file where they share a
 * kind): */
typedef enum souk_setting_type {
  SOUK_SETTING_BOOL = 1, /* true/false, yes/no, on/off, 1/0 */
  SOUK_SETTING_INT,      /* a decimal integer in [min, max] */
  SOUK_SETTING_MONEY,    /* an amount with at most `decimals` decimal places, stored as
                            int64 minor units (cents, coins) in [min, max]: "1,000,000",
                            "$12.50"; never a float */
  SOUK_SETTING_STRING,   /* UTF-8 text of min..max characters (max 0: 100), no control
                            characters */
  SOUK_SETTING_CHANNEL,  /* a channel id, or its mention <#id> */
  SOUK_SETTING_ROLE,     /* a role id, or its mention <@&id> */
  SOUK_SETTING_ENUM,     /* one of `choices`, any case */
  SOUK_SETTING_TIMEZONE, /* an IANA time zone name: "Europe/Paris", "UTC" */
} souk_setting_type_t;

/** Where the value in effect comes from. */
typedef enum souk_setting_source {
  SOUK_SETTING_DEFAULT, /* the setting's default (or the config key's built-in default) */
  SOUK_SETTING_CONFIG,  /* the bot-wide config key, set by the operator */
  SOUK_SETTING_SET,     /* set for this guild or user (by an admin, or the user) */
} souk_setting_source_t;

/** One setting.  Tables end with a zero entry (key NULL). */
typedef struct souk_setting {
  /** "<module>.<name>": the module's name, a dot, then [a-z0-9_.]; at most
   * 64 characters, unique. */
  const char *key;
  souk_setting_scope_t scope;
  souk_setting_type_t type;
  /** The default as text, read by the type's rules; NULL: none (reads as
   * 0, false, "" or no id). */
  const char *def;
  /** INT and MONEY (in minor units): bounds; min always applies, max 0
   * means none (as in conf.h).  STRING: length in characters. */
  int64_t min, max;
  /** MONEY: digits after the decimal point (2 for cents, 0 for coins). */
  unsigned decimals;
  /** ENUM: the names, NULL-terminated. */
  const char *const *choices;
  /** For people: a short name (at most 45 characters: it is a form's
   * label) and one sentence saying what it changes. */
  const char *label;
  const char *description;
  /** A bot-wide config key ("market.start_cash") whose value is the
   * default when the operator set it; NULL: none.  Its text must read as
   * this setting's type. */
  const char *config_key;
  /** The setup wizard's step that asks for it ("channels", "market");
   * NULL: only /settings set changes it. */
  const char *step;
  /** A rule of the module's on top of the type's, or NULL: called with the
   * value's text in the form souk_setting_get() gives; returns false with
   * the user-facing reason in why (whycap bytes) to refuse it. */
  bool (*check)(const char *value, char *why, size_t whycap);
} souk_setting_t;

/** The value in effect as text, in the form souk_setting_set() reads
 * ("true", "42", "1000000.00", a channel's id, an enum's name; "" for
 * none), into out (cap bytes, always terminated); *src (may be NULL) says
 * where it comes from.  scope_id 0 (a DM has no guild) reads the default.
 * 0, SOUK_ENOTFOUND (no such setting), SOUK_ETOOBIG (cut to fit). */
int souk_setting_get(uint64_t scope_id, const char *key, char *out, size_t cap,
                     souk_setting_source_t *src);
/** The value for people: a channel or role as its mention, money with
 * thousands separators, a bool as "on"/"off", "not set" for none.  Same
 * returns as souk_setting_get. */
int souk_setting_display(uint64_t scope_id, const char *key, char *out, size_t cap);
/** BOOL (1/0), INT, MONEY (minor units) and ENUM (the choice's index):
 * the value in effect.  0 for an unknown key (logged once) or another
 * type. */
int64_t souk_setting_int(uint64_t scope_id, const char *key);
/** CHANNEL and ROLE: the id in effect, 0 when none. */
uint64_t souk_setting_id(uint64_t scope_id, const char *key);
/** STRING, ENUM and TIMEZONE: the text in effect ("" for none), owned by
 * the registry (see Ownership above).  Never NULL. */
const char *souk_setting_str(uint64_t scope_id, const char *key);
/** The guilds (or users) with a value of key set, whether or not this
 * process has seen them since it started (every set value is in memory):
 * up to cap scope ids into out, in no particular order.  Returns how many
 * there are, which may be more than cap (call again with room for them),
 * or SOUK_ENOTFOUND.  A value read from another process counts once read.
 * O(every value held): for a periodic job, not per message. */
int64_t souk_setting_scopes(const char *key, uint64_t *out, size_t cap);

/** Set a value for a guild or user: validated (a refusal puts the
 * user-facing reason in err, errcap bytes, e.g. "expected an integer
 * between 1 and 100, found \"500\""), in effect at once in this process,
 * written to the store in the background, logged as an audit line with
 * who (by_user) and the old and new values.  Setting the value already
 * set changes nothing; setting the default's value keeps it even when the
 * default changes later.  scope_id 0 (a DM's guild) is SOUK_EINVAL.  0, SOUK_ENOTFOUND (no such
 * setting), SOUK_EINVAL (the reason in err), SOUK_ESTOPPED (the registry is not running). */
int souk_setting_set(uint64_t scope_id, const char *key, const char *text, uint64_t by_user,
                     char *err, size_t errcap);
/** Forget a guild's or user's value: the default applies again.  0 (also
 * when nothing was set), SOUK_ENOTFOUND, SOUK_ESTOPPED. */
int souk_setting_reset(uint64_t scope_id, const char *key, uint64_t by_user);
/** Called when a change is in the store, or could not be saved. */
typedef void (*souk_setting_done_cb)(void *ud, int status);
/** Call done(ud, status) on the loop thread, later (never inside this
 * call), once the value of key for scope_id as it is now is in the store
 * (status 0), or once its write failed (the previous value applies again;
 * status SOUK_E*).  For a handler that should answer "saved" only when it
 * is: souk_setting_set(), then this.  With nothing being written, done
 * gets 0 at once (from the loop).  At shutdown waiting callbacks get
 * SOUK_ESTOPPED.  0, SOUK_ENOTFOUND, SOUK_ESTOPPED (done then never
 * called). */
int souk_setting_flush(uint64_t scope_id, const char *key, souk_setting_done_cb done, void *ud);

/** Validate text for key without setting anything (a wizard checks an
 * answer as it is given).  0, SOUK_ENOTFOUND or SOUK_EINVAL (reason in
 * err). */
int souk_setting_check(const char *key, const char *text, char *err, size_t errcap);

/** Every registered setting, for /settings view and the wizards, in the
 * order of the modules and their tables: count, and setting i with its
 * module's name (NULL past the end). */
size_t souk_setting_count(void);
const souk_setting_t *souk_setting_at(size_t i, const char **module);
/** The setting called key (and its module), or NULL. */
const souk_setting_t *souk_setting_find(const char *key, const char **module);

/** Called on the loop thread when the value in effect of s for scope_id
 * changed: set or reset here, or read from the store after another
 * process changed it.  Read the new value with the souk_setting_* calls. */
typedef void (*souk_setting_watch_cb)(uint64_t scope_id, const souk_setting_t *s, void *ud);
/** Be told of every change of key (a module's init calls it; watchers stay
 * until shutdown).  0, SOUK_ENOTFOUND, SOUK_EFULL (too many watchers). */
int souk_setting_watch(const char *key, souk_setting_watch_cb cb, void *ud);

#endif
