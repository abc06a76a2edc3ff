/* Parsing commands into souk_cmd_args_t: from an interaction's `data`
 * object and from prefix or console text, then validating the values.
 *
 * Both inputs end in the same representation and the same validation, so a
 * handler never knows which surface it runs on and a user gets the same
 * message for the same mistake everywhere.  Every message is one sentence
 * meant for the user; the tests assert their exact text. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd_int.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"

const char *souk__cmd_type_name(souk_cmd_opt_type_t t) {
  switch (t) {
  case SOUK_OPT_STRING:
    return "string";
  case SOUK_OPT_INTEGER:
    return "integer";
  case SOUK_OPT_BOOLEAN:
    return "boolean";
  case SOUK_OPT_USER:
    return "user";
  case SOUK_OPT_CHANNEL:
    return "channel";
  case SOUK_OPT_ROLE:
    return "role";
  case SOUK_OPT_NUMBER:
    return "number";
  default:
    return "unknown";
  }
}

static int err(souk_cmd_args_t *a, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int err(souk_cmd_args_t *a, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->error, sizeof a->error, fmt, ap);
  va_end(ap);
  return rc;
}

/* A value as a reply quotes it (souk/cmd.h).  The loop leaves room for
 * one more UTF-8 sequence and the "..." after it. */
const char *souk_cmd_quote(char *out, size_t cap, const char *s, size_t n) {
  size_t o = 0, chars = 0, i = 0;
  while (i < n && chars < 24 && o + 8 < cap) {
    size_t k = souk_utf8_seq((const unsigned char *)s + i, n - i);
    if (k == 0) k = 1;
    for (size_t m = 0; m < k; m++)
      out[o++] = s[i + m] == '`' ? '\'' : s[i + m];
    i += k;
    chars++;
  }
  if (i < n && o + 4 <= cap) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
  return out;
}

/* The reply for a value that is not of its option's type: what the option
 * takes, with an example, and the value that was not it (given may be
 * NULL when there is no text to show). */
static int type_err(souk_cmd_args_t *a, const souk_cmd_option_t *o, const char *given, size_t n) {
  const char *what;
  switch (o->type) {
  case SOUK_OPT_INTEGER:
    what = "a whole number, like 10";
    break;
  case SOUK_OPT_NUMBER:
    what = "a number, like 2.5";
    break;
  case SOUK_OPT_BOOLEAN:
    what = "true or false";
    break;
  case SOUK_OPT_USER:
    what = "a user: a mention (@name) or a user ID";
    break;
  case SOUK_OPT_CHANNEL:
    what = "a channel: a mention (#channel) or a channel ID";
    break;
  case SOUK_OPT_ROLE:
    what = "a role: a mention (@role) or a role ID";
    break;
  default:
    what = "text";
    break;
  }
  if (!given || n == 0) return err(a, SOUK_EINVAL, "`%s` must be %s.", o->name, what);
  char q[128];
  return err(a, SOUK_EINVAL, "`%s` must be %s; `%s` is not.", o->name, what,
             souk_cmd_quote(q, sizeof q, given, n));
}

/* The reply for a number outside its option's bounds (or outside int64,
 * given as text): the range accepted, and whether the value was too small
 * or too large. */
static int range_err(souk_cmd_args_t *a, const souk_cmd_option_t *o, const char *given,
                     bool too_small) {
  char lo[32] = "", hi[32] = "";
  if (o->type == SOUK_OPT_NUMBER) {
    if (o->has_min) snprintf(lo, sizeof lo, "%.15g", o->min_num);
    if (o->has_max) snprintf(hi, sizeof hi, "%.15g", o->max_num);
  } else {
    if (o->has_min) snprintf(lo, sizeof lo, "%" PRId64, o->min_int);
    if (o->has_max) snprintf(hi, sizeof hi, "%" PRId64, o->max_int);
  }
  const char *why = too_small ? "too small" : "too large";
  if (lo[0] && hi[0])
    return err(a, SOUK_EINVAL, "`%s` must be from %s to %s; %s is %s.", o->name, lo, hi, given,
               why);
  if (lo[0])
    return err(a, SOUK_EINVAL, "`%s` must be %s or more; %s is %s.", o->name, lo, given, why);
  if (hi[0])
    return err(a, SOUK_EINVAL, "`%s` must be %s or less; %s is %s.", o->name, hi, given, why);
  return err(a, SOUK_EINVAL, "`%s` is a number %s to handle; %s does not fit.", o->name, why,
             given);
}

/* A number that did not fit in int64, as text: too small when negative. */
static int overflow_err(souk_cmd_args_t *a, const souk_cmd_option_t *o, const char *s, size_t n) {
  char q[128];
  souk_cmd_quote(q, sizeof q, s, n);
  return range_err(a, o, q, n > 0 && s[0] == '-');
}

/* A snowflake written as 17-20 digits (ids since 2015 have at least 17),
 * fitting in 64 bits. */
static bool parse_snowflake(const char *s, size_t n, uint64_t *out) {
  if (n < 17 || n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

/* A mention <lead id> for the given lead ("@", "@!", "#", "@&") or a raw id. */
static bool parse_mention(const char *s, size_t n, const char *const *leads, uint64_t *out) {
  if (n >= 3 && s[0] == '<' && s[n - 1] == '>') {
    for (; *leads; leads++) {
      size_t ll = strlen(*leads);
      if (n > ll + 2 && memcmp(s + 1, *leads, ll) == 0 && isdigit((unsigned char)s[1 + ll]))
        return parse_snowflake(s + 1 + ll, n - 2 - ll, out);
    }
    return false;
  }
  return parse_snowflake(s, n, out);
}

static bool word_eq(const char *s, size_t n, const char *w) {
  return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

int souk__cmd_convert(souk_cmd_opt_type_t t, const char *s, size_t n, souk_cmd_arg_t *v) {
  static const char *const user_leads[] = {"@!", "@", NULL};
  static const char *const channel_leads[] = {"#", NULL};
  static const char *const role_leads[] = {"@&", NULL};
  switch (t) {
  case SOUK_OPT_STRING:
    return 0;
  case SOUK_OPT_INTEGER: {
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return SOUK_EINVAL;
    /* Accumulate negatively so INT64_MIN parses without overflow. */
    int64_t acc = 0;
    bool range = false;
    for (; i < n; i++) {
      if (s[i] < '0' || s[i] > '9') return SOUK_EINVAL;
      int d = s[i] - '0';
      if (acc < (INT64_MIN + d) / 10)
        range = true;
      else
        acc = acc * 10 - d;
    }
    if (range || (!neg && acc == INT64_MIN)) return SOUK_ERANGE;
    v->i = neg ? acc : -acc;
    return 0;
  }
  case SOUK_OPT_NUMBER: {
    /* strtod also takes "nan", "inf" and hex floats; a user means none of
     * them, so only plain decimal text gets through. */
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return SOUK_EINVAL;
    bool digit = false;
    for (size_t i = 0; i < n; i++) {
      char c = s[i];
      if (isdigit((unsigned char)c))
        digit = true;
      else if (c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E')
        return SOUK_EINVAL;
    }
    if (!digit) return SOUK_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (*end || !isfinite(d)) return SOUK_EINVAL;
    v->num = d;
    return 0;
  }
  case SOUK_OPT_BOOLEAN:
    if (word_eq(s, n, "true") || word_eq(s, n, "yes") || word_eq(s, n, "on"))
      v->b = true;
    else if (word_eq(s, n, "false") || word_eq(s, n, "no") || word_eq(s, n, "off"))
      v->b = false;
    else
      return SOUK_EINVAL;
    return 0;
  case SOUK_OPT_USER:
    return parse_mention(s, n, user_leads, &v->id) ? 0 : SOUK_EINVAL;
  case SOUK_OPT_CHANNEL:
    return parse_mention(s, n, channel_leads, &v->id) ? 0 : SOUK_EINVAL;
  case SOUK_OPT_ROLE:
    return parse_mention(s, n, role_leads, &v->id) ? 0 : SOUK_EINVAL;
  default:
    return SOUK_EINVAL;
  }
}

static const souk_cmd_option_t *find_option(const struct souk_command *c, const char *name,
                                            size_t n) {
  for (const souk_cmd_option_t *o = c->options; o && o->name; o++)
    if (strlen(o->name) == n && strncasecmp(o->name, name, n) == 0) return o;
  return NULL;
}

static souk_cmd_arg_t *find_arg(souk_cmd_args_t *a, const char *name) {
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i].name == name) return &a->v[i];
  return NULL;
}

/* The reply for an option the command does not have: what it takes. */
static int unknown_option(souk_cmd_args_t *a, const struct souk_command *cur, const char *name,
                          size_t n) {
  char q[128];
  souk_cmd_quote(q, sizeof q, name, n);
  if (!cur->options || !cur->options[0].name)
    return err(a, SOUK_EINVAL, "`/%s` has no option `%s`, nor any other.", a->path, q);
  souk_buf_t b = {0};
  for (const souk_cmd_option_t *o = cur->options; o->name; o++)
    souk_buf_printf(&b, "%s`%s`", o == cur->options ? "" : o[1].name ? ", " : " and ", o->name);
  err(a, SOUK_EINVAL, "`/%s` has no option `%s`; it takes %s.", a->path, q, b.data);
  souk_buf_free(&b);
  return SOUK_EINVAL;
}

/* Append a new argument for option o; the caller has checked for
 * duplicates, and at most one argument exists per option, so the array of
 * SOUK_CMD_OPTIONS_MAX never overflows. */
static souk_cmd_arg_t *add_arg(souk_cmd_args_t *a, const souk_cmd_option_t *o) {
  SOUK_ASSERT(a->n < SOUK_CMD_OPTIONS_MAX);
  souk_cmd_arg_t *v = &a->v[a->n++];
  *v = (souk_cmd_arg_t){.name = o->name, .type = o->type};
  return v;
}

/* Convert text to option o's type and store it, or set the reply. */
static int set_text_value(souk_cmd_args_t *a, const souk_cmd_option_t *o, const char *s, size_t n) {
  if (find_arg(a, o->name)) return err(a, SOUK_EINVAL, "Option `%s` was given twice.", o->name);
  souk_cmd_arg_t *v = add_arg(a, o);
  int rc = souk__cmd_convert(o->type, s, n, v);
  if (rc == SOUK_ERANGE) return overflow_err(a, o, s, n);
  if (rc) return type_err(a, o, s, n);
  if (o->type == SOUK_OPT_STRING) v->text = souk_memdup0(s, n);
  return 0;
}

/* "`a`", "`a` or `b`", "one of `a`, `b` or `c`". */
static void list_choices(souk_buf_t *b, const souk_cmd_option_t *o) {
  size_t n = 0;
  for (const souk_cmd_choice_t *c = o->choices; c->name; c++)
    n++;
  if (n > 2) souk_buf_puts(b, "one of ");
  size_t i = 0;
  for (const souk_cmd_choice_t *c = o->choices; c->name; c++, i++)
    souk_buf_printf(b, "%s`%s`", i == 0 ? "" : i + 1 == n ? " or " : ", ", c->value);
}

/* "1 character", "2 characters". */
static const char *chars_word(size_t n) { return n == 1 ? "character" : "characters"; }

/* Bounds, choices and lengths of one parsed value. */
static int validate_arg(souk_cmd_args_t *a, const souk_cmd_option_t *o, souk_cmd_arg_t *v) {
  if (o->type == SOUK_OPT_INTEGER &&
      ((o->has_min && v->i < o->min_int) || (o->has_max && v->i > o->max_int))) {
    char g[32];
    snprintf(g, sizeof g, "%" PRId64, v->i);
    return range_err(a, o, g, o->has_min && v->i < o->min_int);
  }
  if (o->type == SOUK_OPT_NUMBER &&
      ((o->has_min && v->num < o->min_num) || (o->has_max && v->num > o->max_num))) {
    char g[32];
    snprintf(g, sizeof g, "%.15g", v->num);
    return range_err(a, o, g, o->has_min && v->num < o->min_num);
  }
  if (o->type == SOUK_OPT_STRING && v->text) {
    size_t len = strlen(v->text);
    size_t chars = souk__cmd_utf8_chars(v->text, len);
    char q[128];
    if (o->max_length && chars > o->max_length)
      return err(a, SOUK_EINVAL, "`%s` must be %u %s or fewer; `%s` has %zu.", o->name,
                 (unsigned)o->max_length, chars_word(o->max_length),
                 souk_cmd_quote(q, sizeof q, v->text, len), chars);
    if (o->min_length && chars < o->min_length) {
      if (chars == 0) return err(a, SOUK_EINVAL, "`%s` must not be empty.", o->name);
      return err(a, SOUK_EINVAL, "`%s` must be %u %s or more; `%s` has %zu.", o->name,
                 (unsigned)o->min_length, chars_word(o->min_length),
                 souk_cmd_quote(q, sizeof q, v->text, len), chars);
    }
  }
  if (o->choices) {
    char given[128] = "";
    for (const souk_cmd_choice_t *c = o->choices; c->name; c++) {
      souk_cmd_arg_t cv = {0};
      if (o->type == SOUK_OPT_STRING) {
        /* A prefix user may type the choice's name as shown by /help; the
         * handler always gets the value. */
        if (strcmp(v->text, c->value) == 0) return 0;
        if (strcasecmp(v->text, c->name) == 0) {
          souk_free(v->text);
          v->text = souk_strdup(c->value);
          return 0;
        }
        souk_cmd_quote(given, sizeof given, v->text, strlen(v->text));
      } else if (souk__cmd_convert(o->type, c->value, strlen(c->value), &cv) == 0) {
        if (o->type == SOUK_OPT_INTEGER && cv.i == v->i) return 0;
        if (o->type == SOUK_OPT_NUMBER && cv.num == v->num) return 0;
        if (o->type == SOUK_OPT_INTEGER) snprintf(given, sizeof given, "%" PRId64, v->i);
        if (o->type == SOUK_OPT_NUMBER) snprintf(given, sizeof given, "%.15g", v->num);
      }
    }
    souk_buf_t b = {0};
    list_choices(&b, o);
    if (given[0])
      err(a, SOUK_EINVAL, "`%s` must be %s; `%s` is not.", o->name, b.data ? b.data : "", given);
    else
      err(a, SOUK_EINVAL, "`%s` must be %s.", o->name, b.data ? b.data : "");
    souk_buf_free(&b);
    return SOUK_EINVAL;
  }
  return 0;
}

/* Validate every parsed value, then required options, in table order so
 * the first missing one is named. */
static int validate(souk_cmd_args_t *a) {
  for (const souk_cmd_option_t *o = a->cmd->options; o && o->name; o++) {
    souk_cmd_arg_t *v = find_arg(a, o->name);
    if (!v) {
      if (o->required)
        return err(a, SOUK_EINVAL, "`/%s` needs `%s` (%s).", a->path, o->name, o->description);
      continue;
    }
    int rc = validate_arg(a, o, v);
    if (rc) return rc;
  }
  return 0;
}

static void path_add(souk_cmd_args_t *a, const char *name) {
  size_t l = strlen(a->path);
  snprintf(a->path + l, sizeof a->path - l, "%s%s", l ? " " : "", name);
}

static void start(souk_cmd_args_t *a) { memset(a, 0, sizeof *a); }

static int sub_err(souk_cmd_args_t *a, const struct souk_command *cur, const char *what, size_t n) {
  souk_buf_t b = {0};
  for (const struct souk_command *s = cur->subcommands; s->name; s++)
    souk_buf_printf(&b, "%s`%s`", s == cur->subcommands ? "" : ", ", s->name);
  if (what)
    err(a, SOUK_EINVAL, "Unknown subcommand `%.*s` of `/%s`; try %s.", (int)(n > 32 ? 32 : n), what,
        a->path, b.data);
  else
    err(a, SOUK_EINVAL, "`/%s` needs a subcommand: %s.", a->path, b.data);
  souk_buf_free(&b);
  return SOUK_EINVAL;
}

/* --- Interactions ------------------------------------------------------- */

/* Store the JSON value of option o; focused autocomplete values keep their
 * text because Discord sends what the user has typed so far. */
static int set_json_value(souk_cmd_args_t *a, const souk_json_t *j, const souk_cmd_option_t *o,
                          int opt, bool autocomplete) {
  if (find_arg(a, o->name)) return err(a, SOUK_EINVAL, "Option `%s` was given twice.", o->name);
  int val = souk_json_get(j, opt, "value");
  size_t rawn = 0;
  const char *raw = val >= 0 ? souk_json_raw(j, val, &rawn) : NULL;
  int64_t sent_type = 0;
  /* A value of another type than the option's: its text could read as
   * right ("5" sent as a string), so it is not quoted. */
  if (souk_json_i64(j, souk_json_get(j, opt, "type"), &sent_type) == 0 && sent_type != o->type)
    return type_err(a, o, NULL, 0);
  souk_cmd_arg_t *v = add_arg(a, o);
  int ft = souk_json_get(j, opt, "focused");
  if (autocomplete && souk_json_type(j, ft) == SOUK_JSON_TRUE) {
    v->focused = true;
    if (souk_json_type(j, val) == SOUK_JSON_STRING)
      v->text = souk_json_strdup(j, val);
    else
      v->text = souk_memdup0(raw ? raw : "", raw ? rawn : 0);
    /* Best effort: the partial text may not be a valid value yet. */
    (void)souk__cmd_convert(o->type, v->text, strlen(v->text), v);
    return 0;
  }
  souk_json_type_t jt = souk_json_type(j, val);
  int rc = SOUK_EINVAL;
  switch (o->type) {
  case SOUK_OPT_STRING:
    if (jt == SOUK_JSON_STRING) {
      v->text = souk_json_strdup(j, val);
      rc = 0;
    }
    break;
  case SOUK_OPT_INTEGER:
    if (jt == SOUK_JSON_NUMBER) rc = souk_json_i64(j, val, &v->i);
    break;
  case SOUK_OPT_NUMBER:
    if (jt == SOUK_JSON_NUMBER) rc = souk_json_double(j, val, &v->num);
    break;
  case SOUK_OPT_BOOLEAN:
    if (jt == SOUK_JSON_TRUE || jt == SOUK_JSON_FALSE) rc = souk_json_bool(j, val, &v->b);
    break;
  default: /* Discord sends ids as strings. */
    if (jt == SOUK_JSON_STRING) rc = souk_json_u64(j, val, &v->id);
    break;
  }
  if (rc == SOUK_ERANGE) return overflow_err(a, o, raw ? raw : "", raw ? rawn : 0);
  if (rc) return type_err(a, o, raw, rawn);
  return 0;
}

void souk__cmd_args_user(souk_cmd_args_t *a, uint64_t id, const char *name, bool bot) {
  for (size_t i = 0; a && i < a->n; i++) {
    souk_cmd_arg_t *v = &a->v[i];
    if (v->type != SOUK_OPT_USER || v->id != id) continue;
    v->bot = bot;
    v->resolved = true;
    souk_free(v->text);
    v->text = name && name[0] ? souk_strdup(name) : NULL;
  }
}

/* Users an interaction resolved for its USER options (data.resolved):
 * their display names (the member's nick, the global name, the username)
 * and whether they are bots. */
static void resolve_users(souk_cmd_args_t *a, const souk_json_t *j, int data) {
  int res = souk_json_get(j, data, "resolved");
  int users = souk_json_get(j, res, "users"), members = souk_json_get(j, res, "members");
  for (size_t i = 0; i < a->n; i++) {
    if (a->v[i].type != SOUK_OPT_USER) continue;
    char key[24], name[100] = "";
    snprintf(key, sizeof key, "%" PRIu64, a->v[i].id);
    int u = souk_json_get(j, users, key), m = souk_json_get(j, members, key);
    if (u < 0) continue;
    if (!(m >= 0 && souk_json_str(j, souk_json_get(j, m, "nick"), name, sizeof name) > 0) &&
        souk_json_str(j, souk_json_get(j, u, "global_name"), name, sizeof name) <= 0 &&
        souk_json_str(j, souk_json_get(j, u, "username"), name, sizeof name) <= 0)
      name[0] = '\0';
    bool bot = false;
    souk_json_bool(j, souk_json_get(j, u, "bot"), &bot);
    souk__cmd_args_user(a, a->v[i].id, name, bot);
  }
}

int souk__cmd_parse_interaction(const souk_json_t *j, int data, bool autocomplete,
                                souk_cmd_args_t *a) {
  start(a);
  char name[SOUK_CMD_NAME_MAX + 1];
  int nt = souk_json_get(j, data, "name");
  if (souk_json_str(j, nt, name, sizeof name) < 0)
    return err(a, SOUK_ENOTFOUND, "Unknown command.");
  a->top = souk__cmd_find(name, &a->module);
  if (!a->top) return err(a, SOUK_ENOTFOUND, "Unknown command `/%s`.", name);
  path_add(a, a->top->name);
  const struct souk_command *cur = a->top;
  int opts = souk_json_get(j, data, "options");
  while (cur->subcommands) {
    int first = souk_json_at(j, opts, 0);
    int64_t t = 0;
    char sub[SOUK_CMD_NAME_MAX + 1];
    if (first < 0 || souk_json_i64(j, souk_json_get(j, first, "type"), &t) != 0 ||
        (t != 1 && t != 2) ||
        souk_json_str(j, souk_json_get(j, first, "name"), sub, sizeof sub) < 0)
      return sub_err(a, cur, NULL, 0);
    const struct souk_command *s = souk__cmd_sub(cur, sub, strlen(sub));
    if (!s || (t == 2) != (s->subcommands != NULL)) return sub_err(a, cur, sub, strlen(sub));
    if (s->subcommands) a->group = s;
    path_add(a, s->name);
    cur = s;
    opts = souk_json_get(j, first, "options");
  }
  a->cmd = cur;
  size_t nopts = souk_json_count(j, opts);
  if (souk_json_type(j, opts) == SOUK_JSON_ARRAY && nopts > SOUK_CMD_OPTIONS_MAX)
    return err(a, SOUK_EINVAL, "Too many options.");
  for (size_t i = 0; souk_json_type(j, opts) == SOUK_JSON_ARRAY && i < nopts; i++) {
    int opt = souk_json_at(j, opts, i);
    char oname[SOUK_CMD_NAME_MAX + 1];
    int len = souk_json_str(j, souk_json_get(j, opt, "name"), oname, sizeof oname);
    const souk_cmd_option_t *o = len < 0 ? NULL : find_option(cur, oname, (size_t)len);
    if (!o) return unknown_option(a, cur, len < 0 ? "?" : oname, len < 0 ? 1 : (size_t)len);
    int rc = set_json_value(a, j, o, opt, autocomplete);
    if (rc) return rc;
  }
  if (autocomplete) return 0;
  resolve_users(a, j, data);
  return validate(a);
}

/* --- Prefix and console text -------------------------------------------- */

typedef struct token {
  const char *key; /* NULL for a positional argument */
  size_t keylen;
  bool quoted;
  souk_buf_t val; /* unescaped value */
} token_t;

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/* A quoted value from s[*pos] == '"': \" and \\ are escapes, anything else
 * is kept as typed so Windows paths and regexes survive. */
static int read_quoted(const char *s, size_t len, size_t *pos, souk_buf_t *out) {
  size_t p = *pos + 1;
  while (p < len) {
    char c = s[p];
    if (c == '\\' && p + 1 < len && (s[p + 1] == '"' || s[p + 1] == '\\')) {
      souk_buf_putc(out, s[p + 1]);
      p += 2;
      continue;
    }
    if (c == '"') {
      *pos = p + 1;
      return 0;
    }
    souk_buf_putc(out, c);
    p++;
  }
  return SOUK_EPARSE;
}

static void read_bare(const char *s, size_t len, size_t *pos, souk_buf_t *out) {
  size_t p = *pos;
  while (p < len && !isspace((unsigned char)s[p])) {
    if (s[p] == '\\' && p + 1 < len && (s[p + 1] == '"' || s[p + 1] == '\\')) {
      souk_buf_putc(out, s[p + 1]);
      p += 2;
    } else {
      souk_buf_putc(out, s[p++]);
    }
  }
  *pos = p;
}

/* Next token.  Returns 1 at the end, 0 with t filled, SOUK_EPARSE for an
 * unterminated quote.  `key:value` is split only when key looks like an
 * option name and is not a URL scheme (https://...). */
static int next_token(const char *s, size_t len, size_t *pos, token_t *t) {
  while (*pos < len && isspace((unsigned char)s[*pos]))
    (*pos)++;
  if (*pos >= len) return 1;
  souk_buf_reset(&t->val);
  t->key = NULL;
  t->keylen = 0;
  t->quoted = false;
  size_t p = *pos;
  if (s[p] == '"') {
    t->quoted = true;
    return read_quoted(s, len, pos, &t->val);
  }
  size_t k = p;
  while (k < len && name_char(s[k]))
    k++;
  if (k > p && k - p <= SOUK_CMD_NAME_MAX && k < len && s[k] == ':' &&
      !(k + 2 < len && s[k + 1] == '/' && s[k + 2] == '/')) {
    t->key = s + p;
    t->keylen = k - p;
    *pos = k + 1;
    if (*pos < len && s[*pos] == '"') {
      t->quoted = true;
      return read_quoted(s, len, pos, &t->val);
    }
  }
  read_bare(s, len, pos, &t->val);
  return 0;
}

/* A bare word for the command path, lowercased as Discord's names are. */
static size_t next_word(const char *s, size_t len, size_t *pos, char *out, size_t cap) {
  while (*pos < len && isspace((unsigned char)s[*pos]))
    (*pos)++;
  size_t n = 0, p = *pos;
  while (p < len && !isspace((unsigned char)s[p])) {
    if (n + 1 < cap) out[n] = (char)tolower((unsigned char)s[p]);
    n++;
    p++;
  }
  *pos = p;
  out[n < cap ? n : cap - 1] = '\0';
  return n;
}

static int parse_text_args(const char *s, size_t len, size_t pos, souk_cmd_args_t *a) {
  const struct souk_command *cur = a->cmd;
  size_t nopts = 0;
  for (const souk_cmd_option_t *o = cur->options; o && o->name; o++)
    nopts++;
  size_t next_pos = 0; /* the next option a positional argument may fill */
  token_t t = {0};
  int rc = 0;
  for (;;) {
    int r = next_token(s, len, &pos, &t);
    if (r == 1) break;
    if (r < 0) {
      rc = err(a, SOUK_EINVAL, "Unterminated quote: add a closing `\"`.");
      break;
    }
    const souk_cmd_option_t *o = NULL;
    if (t.key) {
      o = find_option(cur, t.key, t.keylen);
      /* "12:30" is a value, not an option called 12. */
      if (!o && isalpha((unsigned char)t.key[0])) {
        rc = unknown_option(a, cur, t.key, t.keylen);
        break;
      }
      if (!o) {
        /* Not an option after all: the whole token is one positional value. */
        souk_buf_t whole = {0};
        souk_buf_append(&whole, t.key, t.keylen);
        souk_buf_putc(&whole, ':');
        if (t.val.len) souk_buf_append(&whole, t.val.data, t.val.len);
        souk_buf_free(&t.val);
        t.val = whole;
        t.key = NULL;
      }
    }
    if (!o) {
      while (next_pos < nopts && find_arg(a, cur->options[next_pos].name))
        next_pos++;
      if (next_pos >= nopts) {
        if (nopts == 0)
          rc = err(a, SOUK_EINVAL, "`/%s` takes no arguments.", a->path);
        else
          rc = err(a, SOUK_EINVAL, "Too many arguments: `/%s` takes at most %zu.", a->path, nopts);
        break;
      }
      o = &cur->options[next_pos++];
    }
    rc = set_text_value(a, o, t.val.data ? t.val.data : "", t.val.len);
    if (rc) break;
  }
  souk_buf_free(&t.val);
  return rc ? rc : validate(a);
}

static int parse_text(const char *s, size_t len, souk_cmd_args_t *a, bool aliases);

/* An alias at the start of s[pos..len): parse its target followed by the
 * rest of the text instead.  Returns 1 when there was none. */
static int parse_alias(const char *s, size_t len, size_t pos, souk_cmd_args_t *a) {
  size_t used;
  const souk_cmd_alias_t *al = souk__cmd_alias_match(s + pos, len - pos, &used);
  if (!al) return 1;
  souk_buf_t b = {0};
  souk_buf_puts(&b, al->target);
  souk_buf_append(&b, s + pos + used, len - pos - used);
  /* No alias of an alias: the target is a command path. */
  int rc = parse_text(b.data, b.len, a, false);
  souk_buf_free(&b);
  return rc;
}

int souk__cmd_parse_text(const char *s, size_t len, souk_cmd_args_t *a) {
  return parse_text(s, len, a, true);
}

static int parse_text(const char *s, size_t len, souk_cmd_args_t *a, bool aliases) {
  start(a);
  size_t pos = 0;
  while (pos < len && isspace((unsigned char)s[pos]))
    pos++;
  if (pos < len && s[pos] == '/') pos++;
  if (aliases) {
    int rc = parse_alias(s, len, pos, a);
    if (rc != 1) return rc;
  }
  char word[SOUK_CMD_NAME_MAX + 2];
  size_t n = next_word(s, len, &pos, word, sizeof word);
  if (n == 0) return err(a, SOUK_ENOTFOUND, "Type a command name.");
  if (n > SOUK_CMD_NAME_MAX || !(a->top = souk__cmd_find(word, &a->module)))
    return err(a, SOUK_ENOTFOUND, "Unknown command `%.*s`.", (int)(n > 32 ? 32 : n), word);
  path_add(a, a->top->name);
  const struct souk_command *cur = a->top;
  while (cur->subcommands) {
    n = next_word(s, len, &pos, word, sizeof word);
    if (n == 0) return sub_err(a, cur, NULL, 0);
    const struct souk_command *sub = n > SOUK_CMD_NAME_MAX ? NULL : souk__cmd_sub(cur, word, n);
    if (!sub) return sub_err(a, cur, word, n);
    if (sub->subcommands) a->group = sub;
    path_add(a, sub->name);
    cur = sub;
  }
  a->cmd = cur;
  return parse_text_args(s, len, pos, a);
}

/* --- Writing args back as text ------------------------------------------- */

/* A string as a quoted value the text parser reads back unchanged. */
static void put_quoted(souk_buf_t *b, const char *t) {
  souk_buf_putc(b, '"');
  for (const char *p = t ? t : ""; *p; p++) {
    if (*p == '"' || *p == '\\') souk_buf_putc(b, '\\');
    souk_buf_putc(b, *p);
  }
  souk_buf_putc(b, '"');
}

int souk_cmd_args_line(const souk_cmd_args_t *a, souk_buf_t *out) {
  if (!a || !a->cmd || !out) return SOUK_EINVAL;
  souk_buf_puts(out, a->path);
  for (size_t i = 0; i < a->n; i++) {
    const souk_cmd_arg_t *v = &a->v[i];
    souk_buf_printf(out, " %s:", v->name);
    switch (v->type) {
    case SOUK_OPT_INTEGER:
      souk_buf_printf(out, "%" PRId64, v->i);
      break;
    case SOUK_OPT_NUMBER:
      /* 17 significant digits read back to the same double. */
      souk_buf_printf(out, "%.17g", v->num);
      break;
    case SOUK_OPT_BOOLEAN:
      souk_buf_puts(out, v->b ? "true" : "false");
      break;
    case SOUK_OPT_USER:
    case SOUK_OPT_CHANNEL:
    case SOUK_OPT_ROLE:
      /* At least 17 digits, as the parser wants of an id (typed ones may
       * have had leading zeros). */
      souk_buf_printf(out, "%017" PRIu64, v->id);
      break;
    default:
      put_quoted(out, v->text);
      break;
    }
  }
  return 0;
}
