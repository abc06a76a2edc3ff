/* Command registry, pre-handler checks and component routing.
 *
 * Tables are validated once at registration against Discord's documented
 * rules, so a bad table fails at start-up with its module and command named
 * rather than as a 400 from the bulk overwrite later.  Parsing lives in
 * cmd_parse.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/cmd_int.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

typedef struct reg_cmd {
  const struct souk_command *cmd;
  const char *module;
} reg_cmd_t;

typedef struct reg_comp {
  const souk_cmd_component_t *comp;
  const char *module;
} reg_comp_t;

/* A cooldown: until when a user may not run a leaf command again.  The
 * table is open-addressed; expired entries are dropped when it grows, so
 * it stays proportional to the users active within one cooldown. */
typedef struct cooldown {
  const struct souk_command *cmd; /* NULL marks an empty slot */
  uint64_t user;
  uint64_t until;
} cooldown_t;

typedef struct reg_alias {
  const souk_cmd_alias_t *alias;
  const char *module;
} reg_alias_t;

typedef struct reg_gate {
  char name[SOUK_CMD_NAME_MAX + 1];
  souk_cmd_gate_cb fn;
  void *ud;
} reg_gate_t;

static reg_alias_t *g_aliases;
static size_t g_naliases;
static reg_gate_t *g_gates;
static size_t g_ngates;
static reg_cmd_t *g_cmds;
static size_t g_ncmds;
static reg_comp_t *g_comps;
static size_t g_ncomps;
static cooldown_t *g_cd;
static size_t g_cd_cap, g_cd_used;
static char g_err[256];

static uint64_t real_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
static uint64_t (*g_now)(void) = real_now_ms;

/* --- Registration ------------------------------------------------------- */

size_t souk__cmd_utf8_chars(const char *s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) chars++;
  return chars;
}

bool souk__cmd_name_ok(const char *s, size_t n) {
  if (n < 1 || n > SOUK_CMD_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  }
  return true;
}

static bool desc_ok(const char *d) {
  if (!d) return false;
  size_t chars = souk__cmd_utf8_chars(d, strlen(d));
  return chars >= 1 && chars <= SOUK_CMD_DESC_MAX;
}

static int fail(const char *module, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const char *module, const char *where, const char *fmt, ...) {
  char why[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  snprintf(g_err, sizeof g_err, "%s: %s: %s", module ? module : "?", where, why);
  SOUK_ERROR("cmd", "%s", g_err);
  return SOUK_EINVAL;
}

static bool known_type(souk_cmd_opt_type_t t) {
  switch (t) {
  case SOUK_OPT_STRING:
  case SOUK_OPT_INTEGER:
  case SOUK_OPT_BOOLEAN:
  case SOUK_OPT_USER:
  case SOUK_OPT_CHANNEL:
  case SOUK_OPT_ROLE:
  case SOUK_OPT_NUMBER:
    return true;
  default:
    return false;
  }
}

static int check_option(const souk_cmd_option_t *o, const char *module, const char *where) {
  char w[160];
  snprintf(w, sizeof w, "%s option `%s`", where, o->name);
  if (!souk__cmd_name_ok(o->name, strlen(o->name)))
    return fail(module, w, "name must be 1-32 characters of [-_a-z0-9]");
  if (!desc_ok(o->description)) return fail(module, w, "description must be 1-100 characters");
  if (!known_type(o->type)) return fail(module, w, "unknown type %d", (int)o->type);
  if (o->type == SOUK_OPT_INTEGER && o->has_min && o->has_max && o->min_int > o->max_int)
    return fail(module, w, "min is above max");
  if (o->type == SOUK_OPT_NUMBER && o->has_min && o->has_max && !(o->min_num <= o->max_num))
    return fail(module, w, "min is above max");
  if ((o->has_min || o->has_max) && o->type != SOUK_OPT_INTEGER && o->type != SOUK_OPT_NUMBER)
    return fail(module, w, "min/max apply only to integer and number options");
  if ((o->min_length || o->max_length) && o->type != SOUK_OPT_STRING)
    return fail(module, w, "min/max length apply only to string options");
  if (o->max_length > SOUK_CMD_STRING_MAX || o->min_length > SOUK_CMD_STRING_MAX ||
      (o->max_length && o->min_length > o->max_length))
    return fail(module, w, "string lengths must be 0-6000 with min <= max");
  if (o->choices) {
    if (o->type != SOUK_OPT_STRING && o->type != SOUK_OPT_INTEGER && o->type != SOUK_OPT_NUMBER)
      return fail(module, w, "choices apply only to string, integer and number options");
    if (o->autocomplete)
      return fail(module, w, "an option cannot have both choices and autocomplete");
    size_t n = 0;
    for (const souk_cmd_choice_t *c = o->choices; c->name; c++, n++) {
      size_t chars = souk__cmd_utf8_chars(c->name, strlen(c->name));
      if (chars < 1 || chars > 100) return fail(module, w, "choice names must be 1-100 characters");
      if (!c->value) return fail(module, w, "choice `%s` has no value", c->name);
      souk_cmd_arg_t tmp = {0};
      if (souk__cmd_convert(o->type, c->value, strlen(c->value), &tmp) != 0 ||
          (o->type == SOUK_OPT_STRING && souk__cmd_utf8_chars(c->value, strlen(c->value)) > 100))
        return fail(module, w, "choice `%s` has a value that is not a valid %s", c->name,
                    souk__cmd_type_name(o->type));
    }
    if (n == 0 || n > SOUK_CMD_CHOICES_MAX) return fail(module, w, "must have 1-25 choices");
  }
  return 0;
}

/* depth is 0 for a top-level command, 1 for a subcommand or group, 2 for a
 * subcommand inside a group. */
static int check_command(const struct souk_command *c, const char *module, const char *parent,
                         int depth) {
  char path[3 * SOUK_CMD_NAME_MAX + 8], w[sizeof path + 16];
  snprintf(path, sizeof path, "%s%s%.40s", parent ? parent : "", parent ? " " : "",
           c->name ? c->name : "");
  snprintf(w, sizeof w, "command `%s`", path);
  if (!c->name || !souk__cmd_name_ok(c->name, strlen(c->name)))
    return fail(module, w, "name must be 1-32 characters of [-_a-z0-9]");
  if (!desc_ok(c->description)) return fail(module, w, "description must be 1-100 characters");
  if (c->subcommands) {
    if (c->options && c->options[0].name)
      return fail(module, w, "a command with subcommands cannot have options");
    if (c->handler) return fail(module, w, "a command with subcommands cannot have a handler");
    if (depth >= 2) return fail(module, w, "subcommands nest at most two levels deep");
    size_t n = 0;
    for (const struct souk_command *s = c->subcommands; s->name; s++, n++) {
      for (const struct souk_command *t = c->subcommands; t != s; t++)
        if (strcmp(t->name, s->name) == 0)
          return fail(module, w, "duplicate subcommand `%s`", s->name);
      int rc = check_command(s, module, path, depth + 1);
      if (rc) return rc;
    }
    if (n == 0 || n > SOUK_CMD_OPTIONS_MAX) return fail(module, w, "must have 1-25 subcommands");
    return 0;
  }
  if (!c->handler) return fail(module, w, "has no handler");
  size_t n = 0;
  bool optional_seen = false;
  for (const souk_cmd_option_t *o = c->options; o && o->name; o++, n++) {
    int rc = check_option(o, module, w);
    if (rc) return rc;
    if (o->required && optional_seen)
      return fail(module, w, "required option `%s` comes after an optional one", o->name);
    if (!o->required) optional_seen = true;
    for (const souk_cmd_option_t *p = c->options; p != o; p++)
      if (strcmp(p->name, o->name) == 0) return fail(module, w, "duplicate option `%s`", o->name);
    if (o->autocomplete && !c->autocomplete)
      return fail(module, w, "option `%s` wants autocomplete but the command has no handler for it",
                  o->name);
  }
  if (n > SOUK_CMD_OPTIONS_MAX) return fail(module, w, "has more than 25 options");
  return 0;
}

int souk__cmd_register(const struct souk_command *cmds, const char *module) {
  g_err[0] = '\0';
  if (!cmds || !module) return fail(module, "table", "is NULL");
  size_t n = 0;
  for (const struct souk_command *c = cmds; c->name; c++, n++) {
    int rc = check_command(c, module, NULL, 0);
    if (rc) return rc;
    for (const struct souk_command *d = cmds; d != c; d++)
      if (strcmp(d->name, c->name) == 0) return fail(module, c->name, "is declared twice");
    if (souk__cmd_find(c->name, NULL)) {
      snprintf(g_err, sizeof g_err, "%s: command `%s` is already registered", module, c->name);
      SOUK_ERROR("cmd", "%s", g_err);
      return SOUK_EEXIST;
    }
  }
  g_cmds = souk_reallocarray(g_cmds, g_ncmds + n, sizeof *g_cmds);
  for (size_t i = 0; i < n; i++)
    g_cmds[g_ncmds++] = (reg_cmd_t){&cmds[i], module};
  return 0;
}

const char *souk__cmd_last_error(void) { return g_err; }

const struct souk_command *souk__cmd_find(const char *name, const char **module) {
  for (size_t i = 0; i < g_ncmds; i++)
    if (strcmp(g_cmds[i].cmd->name, name) == 0) {
      if (module) *module = g_cmds[i].module;
      return g_cmds[i].cmd;
    }
  return NULL;
}

const struct souk_command *souk__cmd_sub(const struct souk_command *parent, const char *name,
                                         size_t n) {
  for (const struct souk_command *s = parent->subcommands; s && s->name; s++)
    if (strlen(s->name) == n && memcmp(s->name, name, n) == 0) return s;
  return NULL;
}

const struct souk_command *souk__cmd_lookup(const char *const *path, size_t n) {
  if (n < 1 || n > 3) return NULL;
  const struct souk_command *c = souk__cmd_find(path[0], NULL);
  for (size_t i = 1; c && i < n; i++)
    c = souk__cmd_sub(c, path[i], strlen(path[i]));
  return c;
}

size_t souk__cmd_count(void) { return g_ncmds; }

const struct souk_command *souk__cmd_at(size_t i, const char **module) {
  if (i >= g_ncmds) return NULL;
  if (module) *module = g_cmds[i].module;
  return g_cmds[i].cmd;
}

void souk__cmd_clear(void) {
  souk_free(g_cmds);
  g_cmds = NULL;
  g_ncmds = 0;
  souk_free(g_comps);
  g_comps = NULL;
  g_ncomps = 0;
  souk_free(g_cd);
  g_cd = NULL;
  g_cd_cap = g_cd_used = 0;
  souk_free(g_aliases);
  g_aliases = NULL;
  g_naliases = 0;
  souk_free(g_gates);
  g_gates = NULL;
  g_ngates = 0;
  g_err[0] = '\0';
}

/* --- Aliases ------------------------------------------------------------ */

/* Split s into words (runs of non-spaces): up to max, as (start, length)
 * pairs; returns how many, or max + 1 when there are more. */
static size_t words_of(const char *s, size_t len, const char **w, size_t *wl, size_t max) {
  size_t n = 0, p = 0;
  for (;;) {
    while (p < len && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r'))
      p++;
    if (p >= len) return n;
    size_t q = p;
    while (q < len && !(s[q] == ' ' || s[q] == '\t' || s[q] == '\n' || s[q] == '\r'))
      q++;
    if (n == max) return max + 1;
    w[n] = s + p;
    wl[n++] = q - p;
    p = q;
  }
}

static bool alias_name_ok(const char *name) {
  const char *w[3];
  size_t wl[3];
  size_t n = words_of(name, strlen(name), w, wl, 3);
  if (n < 1 || n > 3) return false;
  for (size_t i = 0; i < n; i++)
    if (!souk__cmd_name_ok(w[i], wl[i])) return false;
  /* Exactly one space between words, so matching can compare words. */
  size_t total = n - 1;
  for (size_t i = 0; i < n; i++)
    total += wl[i];
  return total == strlen(name);
}

int souk__cmd_alias_register(const souk_cmd_alias_t *table, const char *module) {
  g_err[0] = '\0';
  if (!table || !module) return fail(module, "alias table", "is NULL");
  size_t n = 0;
  for (const souk_cmd_alias_t *a = table; a->name; a++, n++) {
    if (!alias_name_ok(a->name))
      return fail(module, a->name, "an alias is 1-3 words of [-_a-z0-9] with one space between");
    if (!a->target || !a->target[0]) return fail(module, a->name, "the alias has no target");
    for (const souk_cmd_alias_t *b = table; b != a; b++)
      if (strcmp(a->name, b->name) == 0) return fail(module, a->name, "is declared twice");
    for (size_t i = 0; i < g_naliases; i++)
      if (strcmp(g_aliases[i].alias->name, a->name) == 0) {
        snprintf(g_err, sizeof g_err, "%s: alias `%s` is already registered by %s", module, a->name,
                 g_aliases[i].module);
        SOUK_ERROR("cmd", "%s", g_err);
        return SOUK_EEXIST;
      }
  }
  g_aliases = souk_reallocarray(g_aliases, g_naliases + n, sizeof *g_aliases);
  for (size_t i = 0; i < n; i++)
    g_aliases[g_naliases++] = (reg_alias_t){&table[i], module};
  return 0;
}

int souk__cmd_aliases_check(void) {
  for (size_t i = 0; i < g_naliases; i++) {
    const souk_cmd_alias_t *a = g_aliases[i].alias;
    const char *w[4];
    size_t wl[4];
    size_t n = words_of(a->target, strlen(a->target), w, wl, 3);
    char names[3][SOUK_CMD_NAME_MAX + 1];
    const char *path[3];
    bool ok = n >= 1 && n <= 3;
    for (size_t k = 0; ok && k < n; k++) {
      ok = wl[k] <= SOUK_CMD_NAME_MAX;
      if (ok) {
        memcpy(names[k], w[k], wl[k]);
        names[k][wl[k]] = '\0';
        path[k] = names[k];
      }
    }
    const struct souk_command *c = ok ? souk__cmd_lookup(path, n) : NULL;
    if (!c || c->subcommands) {
      snprintf(g_err, sizeof g_err, "%s: alias `%s`: target `%s` is not a command",
               g_aliases[i].module, a->name, a->target);
      SOUK_ERROR("cmd", "%s", g_err);
      return SOUK_EINVAL;
    }
    if (strcmp(a->name, a->target) == 0) {
      snprintf(g_err, sizeof g_err, "%s: alias `%s` names itself", g_aliases[i].module, a->name);
      SOUK_ERROR("cmd", "%s", g_err);
      return SOUK_EINVAL;
    }
  }
  return 0;
}

const souk_cmd_alias_t *souk__cmd_alias_match(const char *text, size_t len, size_t *used) {
  const char *w[3];
  size_t wl[3];
  size_t n = words_of(text, len, w, wl, 3);
  if (n > 3) n = 3;
  const souk_cmd_alias_t *best = NULL;
  size_t best_words = 0;
  for (size_t i = 0; i < g_naliases; i++) {
    const char *name = g_aliases[i].alias->name;
    size_t k = 0, off = 0, nl = strlen(name);
    bool match = true;
    while (match && off < nl) {
      size_t e = off;
      while (e < nl && name[e] != ' ')
        e++;
      /* Words are compared case-insensitively, as command names are. */
      match = k < n && wl[k] == e - off && strncasecmp(w[k], name + off, e - off) == 0;
      k++;
      off = e + (e < nl);
    }
    if (match && k > best_words) {
      best = g_aliases[i].alias;
      best_words = k;
    }
  }
  if (best && used) *used = (size_t)(w[best_words - 1] + wl[best_words - 1] - text);
  return best;
}

size_t souk_cmd_alias_count(void) { return g_naliases; }

const souk_cmd_alias_t *souk_cmd_alias_at(size_t i, const char **module) {
  if (i >= g_naliases) return NULL;
  if (module) *module = g_aliases[i].module;
  return g_aliases[i].alias;
}

/* --- Gates ---------------------------------------------------------------- */

int souk_cmd_gate_register(const char *name, souk_cmd_gate_cb fn, void *ud) {
  if (!name || !fn || !souk__cmd_name_ok(name, strlen(name))) return SOUK_EINVAL;
  if (souk__cmd_gate_find(name, NULL)) return SOUK_EEXIST;
  g_gates = souk_reallocarray(g_gates, g_ngates + 1, sizeof *g_gates);
  reg_gate_t *g = &g_gates[g_ngates++];
  snprintf(g->name, sizeof g->name, "%s", name);
  g->fn = fn;
  g->ud = ud;
  return 0;
}

souk_cmd_gate_cb souk__cmd_gate_find(const char *name, void **ud) {
  for (size_t i = 0; name && i < g_ngates; i++)
    if (strcmp(g_gates[i].name, name) == 0) {
      if (ud) *ud = g_gates[i].ud;
      return g_gates[i].fn;
    }
  return NULL;
}

/* --- Checks ------------------------------------------------------------- */

/* Names as Discord's client shows them, so the reply matches what a server
 * admin finds in the role settings. */
static const char *const perm_names[] = {"Create Invite",
                                         "Kick Members",
                                         "Ban Members",
                                         "Administrator",
                                         "Manage Channels",
                                         "Manage Server",
                                         "Add Reactions",
                                         "View Audit Log",
                                         "Priority Speaker",
                                         "Video",
                                         "View Channels",
                                         "Send Messages",
                                         "Send Text-to-Speech Messages",
                                         "Manage Messages",
                                         "Embed Links",
                                         "Attach Files",
                                         "Read Message History",
                                         "Mention Everyone",
                                         "Use External Emoji",
                                         "View Server Insights",
                                         "Connect",
                                         "Speak",
                                         "Mute Members",
                                         "Deafen Members",
                                         "Move Members",
                                         "Use Voice Activity",
                                         "Change Nickname",
                                         "Manage Nicknames",
                                         "Manage Roles",
                                         "Manage Webhooks",
                                         "Manage Expressions",
                                         "Use Application Commands",
                                         "Request to Speak",
                                         "Manage Events",
                                         "Manage Threads",
                                         "Create Public Threads",
                                         "Create Private Threads",
                                         "Use External Stickers",
                                         "Send Messages in Threads",
                                         "Use Activities",
                                         "Timeout Members",
                                         "View Creator Monetization Analytics",
                                         "Use Soundboard",
                                         "Create Expressions",
                                         "Create Events",
                                         "Use External Sounds",
                                         "Send Voice Messages"};

static size_t cd_slot(const struct souk_command *cmd, uint64_t user) {
  uint64_t h = (uint64_t)(uintptr_t)cmd * 0x9E3779B97F4A7C15u ^ user * 0xC2B2AE3D27D4EB4Fu;
  h ^= h >> 29;
  return (size_t)h & (g_cd_cap - 1);
}

static cooldown_t *cd_find(const struct souk_command *cmd, uint64_t user) {
  if (!g_cd_cap) return NULL;
  for (size_t i = cd_slot(cmd, user);; i = (i + 1) & (g_cd_cap - 1)) {
    if (!g_cd[i].cmd) return NULL;
    if (g_cd[i].cmd == cmd && g_cd[i].user == user) return &g_cd[i];
  }
}

static void cd_put(const struct souk_command *cmd, uint64_t user, uint64_t until, uint64_t now) {
  cooldown_t *e = cd_find(cmd, user);
  if (e) {
    e->until = until;
    return;
  }
  if ((g_cd_used + 1) * 2 > g_cd_cap) {
    /* Grow, dropping entries that have expired: they mean nothing now. */
    cooldown_t *old = g_cd;
    size_t oldcap = g_cd_cap, live = 0;
    for (size_t i = 0; i < oldcap; i++)
      live += old[i].cmd && old[i].until > now;
    size_t cap = 64;
    while (cap < (live + 1) * 4)
      cap *= 2;
    g_cd = souk_calloc(cap, sizeof *g_cd);
    g_cd_cap = cap;
    g_cd_used = 0;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].cmd && old[i].until > now) {
        size_t j = cd_slot(old[i].cmd, old[i].user);
        while (g_cd[j].cmd)
          j = (j + 1) & (cap - 1);
        g_cd[j] = old[i];
        g_cd_used++;
      }
    souk_free(old);
  }
  size_t j = cd_slot(cmd, user);
  while (g_cd[j].cmd)
    j = (j + 1) & (g_cd_cap - 1);
  g_cd[j] = (cooldown_t){cmd, user, until};
  g_cd_used++;
}

void souk__cmd_set_clock(uint64_t (*now_ms)(void)) { g_now = now_ms ? now_ms : real_now_ms; }

int souk__cmd_check(souk_cmd_args_t *a, const souk__cmd_caller_t *who) {
  SOUK_ASSERT(a && a->cmd && a->top && who);
  const struct souk_command *chain[3] = {a->top, a->group, a->cmd != a->top ? a->cmd : NULL};
  uint32_t flags = 0;
  uint64_t perms = 0;
  uint32_t cooldown = 0;
  for (int i = 0; i < 3; i++) {
    if (!chain[i]) continue;
    flags |= chain[i]->flags;
    perms |= chain[i]->permissions;
    /* The most specific cooldown wins: a subcommand may be cheaper. */
    if (chain[i]->cooldown_ms) cooldown = chain[i]->cooldown_ms;
  }
  if ((flags & SOUK_CMD_GUILD_ONLY) && who->guild_id == 0) {
    snprintf(a->error, sizeof a->error, "`/%s` can only be used in a server.", a->path);
    return SOUK_EFORBIDDEN;
  }
  if (flags & SOUK_CMD_OWNER_ONLY) {
    bool owner = false;
    for (size_t i = 0; i < who->nowners && !owner; i++)
      owner = who->owners[i] == who->user_id;
    if (!owner) {
      snprintf(a->error, sizeof a->error, "`/%s` can only be used by the bot's owners.", a->path);
      return SOUK_EFORBIDDEN;
    }
  }
  uint64_t missing = perms & ~who->permissions;
  if (missing && !(who->permissions & SOUK_PERM_ADMINISTRATOR)) {
    size_t off = (size_t)snprintf(a->error, sizeof a->error, "You need the ");
    int count = 0;
    for (unsigned bit = 0; bit < 64; bit++) {
      if (!(missing & (UINT64_C(1) << bit))) continue;
      uint64_t rest = missing & ~((UINT64_C(2) << bit) - 1);
      const char *sep = count == 0 ? "" : rest ? ", " : " and ";
      if (bit < sizeof perm_names / sizeof perm_names[0])
        off += (size_t)snprintf(a->error + off, off < sizeof a->error ? sizeof a->error - off : 0,
                                "%s%s", sep, perm_names[bit]);
      else
        off += (size_t)snprintf(a->error + off, off < sizeof a->error ? sizeof a->error - off : 0,
                                "%spermission bit %u", sep, bit);
      count++;
    }
    if (off < sizeof a->error)
      snprintf(a->error + off, sizeof a->error - off, " permission%s to use `/%s`.",
               count > 1 ? "s" : "", a->path);
    return SOUK_EFORBIDDEN;
  }
  if (cooldown) {
    uint64_t now = g_now();
    cooldown_t *e = cd_find(a->cmd, who->user_id);
    if (e && e->until > now) {
      uint64_t secs = (e->until - now + 999) / 1000;
      snprintf(a->error, sizeof a->error, "You can use `/%s` again in %" PRIu64 " s.", a->path,
               secs);
      return SOUK_ERATELIMIT;
    }
    cd_put(a->cmd, who->user_id, now + cooldown, now);
  }
  return 0;
}

/* --- Components --------------------------------------------------------- */

int souk__cmd_component_register(const souk_cmd_component_t *table, const char *module) {
  if (!table || !module) return SOUK_EINVAL;
  size_t n = 0;
  for (const souk_cmd_component_t *c = table; c->prefix; c++, n++) {
    size_t len = strlen(c->prefix);
    /* A prefix must leave room for at least one character of state. */
    if (len < 1 || len >= SOUK_CMD_CUSTOM_ID_MAX || !c->fn) {
      snprintf(g_err, sizeof g_err,
               "%s: component prefix `%s` must be 1-99 characters with a handler", module,
               c->prefix);
      SOUK_ERROR("cmd", "%s", g_err);
      return SOUK_EINVAL;
    }
    for (size_t i = 0; i < g_ncomps; i++)
      if (strcmp(g_comps[i].comp->prefix, c->prefix) == 0) {
        snprintf(g_err, sizeof g_err, "%s: component prefix `%s` is already registered", module,
                 c->prefix);
        SOUK_ERROR("cmd", "%s", g_err);
        return SOUK_EEXIST;
      }
    for (const souk_cmd_component_t *d = table; d != c; d++)
      if (strcmp(d->prefix, c->prefix) == 0) return SOUK_EEXIST;
  }
  g_comps = souk_reallocarray(g_comps, g_ncomps + n, sizeof *g_comps);
  for (size_t i = 0; i < n; i++)
    g_comps[g_ncomps++] = (reg_comp_t){&table[i], module};
  return 0;
}

int souk__cmd_route_custom_id(const char *custom_id, souk__cmd_route_t *out) {
  if (!custom_id) return SOUK_EINVAL;
  size_t len = strlen(custom_id);
  if (souk__cmd_utf8_chars(custom_id, len) > SOUK_CMD_CUSTOM_ID_MAX) return SOUK_EINVAL;
  const reg_comp_t *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < g_ncomps; i++) {
    size_t pl = strlen(g_comps[i].comp->prefix);
    if (pl <= len && pl > best_len && memcmp(custom_id, g_comps[i].comp->prefix, pl) == 0) {
      best = &g_comps[i];
      best_len = pl;
    }
  }
  if (!best) return SOUK_ENOTFOUND;
  out->component = best->comp;
  out->module = best->module;
  out->state = custom_id + best_len;
  return 0;
}

int souk_cmd_custom_id(char *out, size_t cap, const char *prefix, const char *state) {
  SOUK_ASSERT(out && cap > 0 && prefix);
  if (!state) state = "";
  size_t pl = strlen(prefix), sl = strlen(state);
  out[0] = '\0';
  if (pl + sl + 1 > cap ||
      souk__cmd_utf8_chars(prefix, pl) + souk__cmd_utf8_chars(state, sl) > SOUK_CMD_CUSTOM_ID_MAX)
    return SOUK_ETOOBIG;
  memcpy(out, prefix, pl);
  memcpy(out + pl, state, sl + 1);
  return 0;
}

/* --- Reading arguments -------------------------------------------------- */

const souk_cmd_arg_t *souk_cmd_arg(const souk_cmd_args_t *a, const char *name) {
  for (size_t i = 0; a && i < a->n; i++)
    if (strcmp(a->v[i].name, name) == 0) return &a->v[i];
  return NULL;
}

int64_t souk_cmd_arg_int(const souk_cmd_args_t *a, const char *name, int64_t def) {
  const souk_cmd_arg_t *v = souk_cmd_arg(a, name);
  return v && v->type == SOUK_OPT_INTEGER ? v->i : def;
}

double souk_cmd_arg_num(const souk_cmd_args_t *a, const char *name, double def) {
  const souk_cmd_arg_t *v = souk_cmd_arg(a, name);
  return v && v->type == SOUK_OPT_NUMBER ? v->num : def;
}

bool souk_cmd_arg_bool(const souk_cmd_args_t *a, const char *name, bool def) {
  const souk_cmd_arg_t *v = souk_cmd_arg(a, name);
  return v && v->type == SOUK_OPT_BOOLEAN ? v->b : def;
}

uint64_t souk_cmd_arg_id(const souk_cmd_args_t *a, const char *name) {
  const souk_cmd_arg_t *v = souk_cmd_arg(a, name);
  return v ? v->id : 0;
}

const char *souk_cmd_arg_str(const souk_cmd_args_t *a, const char *name, const char *def) {
  const souk_cmd_arg_t *v = souk_cmd_arg(a, name);
  return v && v->text ? v->text : def;
}

const souk_cmd_arg_t *souk_cmd_focused(const souk_cmd_args_t *a) {
  for (size_t i = 0; a && i < a->n; i++)
    if (a->v[i].focused) return &a->v[i];
  return NULL;
}

void souk_cmd_args_free(souk_cmd_args_t *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n; i++)
    souk_free(a->v[i].text);
  a->n = 0;
}
