/* Discord JSON for messages, modals, autocomplete choices and application
 * commands (see dmsg.h).  Limits are from Discord's message, embed,
 * component and application-command docs. */
#include "discord/dmsg.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "souk/alloc.h"
#include "souk/cmd.h"

/* Embed limits. */
#define EMBED_TITLE_MAX 256
#define EMBED_DESC_MAX 4096
#define EMBED_FIELDS_MAX 25
#define EMBED_FIELD_NAME_MAX 256
#define EMBED_FIELD_VALUE_MAX 1024
#define EMBED_FOOTER_MAX 2048
/* The sum of every embed's text in one message. */
#define EMBED_TOTAL_MAX 6000
/* Component limits. */
#define BUTTON_LABEL_MAX 80
#define SELECT_PLACEHOLDER_MAX 150
#define SELECT_OPTIONS_MAX 25
#define SELECT_TEXT_MAX 100
#define MODAL_TITLE_MAX 45
#define MODAL_LABEL_MAX 45
#define MODAL_VALUE_MAX 4000
#define CHOICE_NAME_MAX 100

/* A finite double as JSON ("%.17g" never yields inf or nan here). */
static void write_number(souk_jw_t *w, double v) {
  char tmp[40];
  snprintf(tmp, sizeof tmp, "%.17g", v);
  souk_jw_raw(w, tmp, strlen(tmp));
}

/* Bytes of the first max code points of s[0..n), never splitting one. */
static size_t prefix_chars(const char *s, size_t n, size_t max, bool *cut) {
  size_t chars = 0, i = 0;
  while (i < n) {
    if (chars == max) {
      *cut = true;
      return i;
    }
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    chars++;
  }
  *cut = false;
  return n;
}

static size_t chars_of(const char *s) {
  size_t c = 0;
  for (; s && *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) c++;
  return c;
}

void souk__dmsg_str_max(souk_jw_t *w, const char *text, size_t max) {
  if (!text) text = "";
  size_t n = strlen(text);
  bool cut;
  size_t keep = prefix_chars(text, n, max, &cut);
  if (!cut) {
    souk_jw_strn(w, text, n);
    return;
  }
  /* Room for the ellipsis (one code point). */
  keep = prefix_chars(text, n, max > 0 ? max - 1 : 0, &cut);
  char *tmp = souk_malloc(keep + 4);
  memcpy(tmp, text, keep);
  memcpy(tmp + keep, "\xE2\x80\xA6", 3);
  souk_jw_strn(w, tmp, keep + 3);
  souk_free(tmp);
}

/* Write text cut to max characters, also counting it against *budget (the
 * 6000 characters all embeds share); returns false when nothing fits. */
static bool budget_str(souk_jw_t *w, const char *key, const char *text, size_t max,
                       size_t *budget) {
  if (!text || !text[0] || *budget == 0) return false;
  size_t lim = max < *budget ? max : *budget;
  size_t c = chars_of(text);
  souk_jw_key(w, key);
  souk__dmsg_str_max(w, text, lim);
  *budget -= c < lim ? c : lim;
  return true;
}

static void write_embed(souk_jw_t *w, const souk_embed_t *e, size_t *budget) {
  souk_jw_obj(w);
  budget_str(w, "title", e->title, EMBED_TITLE_MAX, budget);
  budget_str(w, "description", e->description, EMBED_DESC_MAX, budget);
  if (e->url && e->url[0]) {
    souk_jw_key(w, "url");
    souk_jw_str(w, e->url);
  }
  if (e->color) {
    souk_jw_key(w, "color");
    souk_jw_i64(w, (int64_t)(e->color & 0xFFFFFF));
  }
  if (e->nfields && *budget > 0) {
    souk_jw_key(w, "fields");
    souk_jw_arr(w);
    if (*budget < 2) *budget = 0;
    /* A field needs at least one character of name and one of value
     * (both are required and non-empty), so two must be left. */
    for (size_t i = 0; i < e->nfields && i < EMBED_FIELDS_MAX && *budget >= 2; i++) {
      const souk_embed_field_t *f = &e->fields[i];
      souk_jw_obj(w);
      (*budget)--; /* kept for the value */
      if (!budget_str(w, "name", f->name, EMBED_FIELD_NAME_MAX, budget)) {
        souk_jw_key(w, "name");
        souk_jw_str(w, "\xE2\x80\x8B"); /* zero-width space */
        (*budget)--;
      }
      (*budget)++;
      if (!budget_str(w, "value", f->value, EMBED_FIELD_VALUE_MAX, budget)) {
        souk_jw_key(w, "value");
        souk_jw_str(w, "\xE2\x80\x8B");
        (*budget)--;
      }
      if (f->inline_field) {
        souk_jw_key(w, "inline");
        souk_jw_bool(w, true);
      }
      souk_jw_end(w);
    }
    souk_jw_end(w);
  }
  if (e->footer && e->footer[0] && *budget > 0) {
    souk_jw_key(w, "footer");
    souk_jw_obj(w);
    budget_str(w, "text", e->footer, EMBED_FOOTER_MAX, budget);
    souk_jw_end(w);
  }
  souk_jw_end(w);
}

static void write_button(souk_jw_t *w, const souk_component_t *c) {
  souk_jw_obj(w);
  souk_jw_key(w, "type");
  souk_jw_i64(w, 2);
  souk_jw_key(w, "style");
  souk_jw_i64(w, c->style >= SOUK_BUTTON_PRIMARY && c->style <= SOUK_BUTTON_DANGER
                     ? c->style
                     : SOUK_BUTTON_SECONDARY);
  souk_jw_key(w, "label");
  souk__dmsg_str_max(w, c->label && c->label[0] ? c->label : "?", BUTTON_LABEL_MAX);
  souk_jw_key(w, "custom_id");
  souk_jw_str(w, c->custom_id ? c->custom_id : "");
  if (c->disabled) {
    souk_jw_key(w, "disabled");
    souk_jw_bool(w, true);
  }
  souk_jw_end(w);
}

static void write_select(souk_jw_t *w, const souk_component_t *c) {
  souk_jw_obj(w);
  souk_jw_key(w, "type");
  souk_jw_i64(w, 3);
  souk_jw_key(w, "custom_id");
  souk_jw_str(w, c->custom_id ? c->custom_id : "");
  if (c->label && c->label[0]) {
    souk_jw_key(w, "placeholder");
    souk__dmsg_str_max(w, c->label, SELECT_PLACEHOLDER_MAX);
  }
  if (c->disabled) {
    souk_jw_key(w, "disabled");
    souk_jw_bool(w, true);
  }
  souk_jw_key(w, "options");
  souk_jw_arr(w);
  for (size_t i = 0; i < c->noptions && i < SELECT_OPTIONS_MAX; i++) {
    const souk_select_option_t *o = &c->options[i];
    souk_jw_obj(w);
    souk_jw_key(w, "label");
    souk__dmsg_str_max(w, o->label && o->label[0] ? o->label : "?", SELECT_TEXT_MAX);
    souk_jw_key(w, "value");
    souk__dmsg_str_max(w, o->value && o->value[0] ? o->value : "?", SELECT_TEXT_MAX);
    if (o->description && o->description[0]) {
      souk_jw_key(w, "description");
      souk__dmsg_str_max(w, o->description, SELECT_TEXT_MAX);
    }
    souk_jw_end(w);
  }
  souk_jw_end(w);
  souk_jw_end(w);
}

/* Lay components out in action rows: up to five buttons a row, a select
 * alone on its row, at most five rows (the rest are dropped, logged by no
 * one: a handler with more than 25 buttons is a bug the tests catch). */
static void write_components(souk_jw_t *w, const souk_component_t *c, size_t n) {
  souk_jw_key(w, "components");
  souk_jw_arr(w);
  size_t rows = 0, i = 0;
  while (i < n && rows < SOUK_MSG_ROWS_MAX) {
    if (!c[i].custom_id || !c[i].custom_id[0] || (c[i].options && c[i].noptions == 0)) {
      i++; /* Discord refuses these; a handler bug must not lose the reply */
      continue;
    }
    souk_jw_obj(w);
    souk_jw_key(w, "type");
    souk_jw_i64(w, 1);
    souk_jw_key(w, "components");
    souk_jw_arr(w);
    if (c[i].options) {
      write_select(w, &c[i]);
      i++;
    } else {
      size_t in_row = 0;
      while (i < n && !c[i].options && in_row < SOUK_MSG_ROW_BUTTONS &&
             !(in_row > 0 && c[i].new_row)) {
        if (c[i].custom_id && c[i].custom_id[0]) {
          write_button(w, &c[i]);
          in_row++;
        }
        i++;
      }
    }
    souk_jw_end(w);
    souk_jw_end(w);
    rows++;
  }
  souk_jw_end(w);
}

void souk__dmsg_write(souk_jw_t *w, const souk_msg_t *m, const char *content, size_t clen,
                      bool with_extras, bool replace, unsigned flags) {
  if (clen || replace) {
    souk_jw_key(w, "content");
    souk_jw_strn(w, content ? content : "", clen);
  }
  if (replace && (!m || !m->nembeds)) {
    souk_jw_key(w, "embeds");
    souk_jw_arr(w);
    souk_jw_end(w);
  }
  if (replace && (!m || !m->ncomponents)) {
    souk_jw_key(w, "components");
    souk_jw_arr(w);
    souk_jw_end(w);
  }
  if (with_extras && m && m->nembeds) {
    size_t budget = EMBED_TOTAL_MAX;
    souk_jw_key(w, "embeds");
    souk_jw_arr(w);
    for (size_t i = 0; i < m->nembeds && i < SOUK_MSG_EMBEDS_MAX; i++)
      write_embed(w, &m->embeds[i], &budget);
    souk_jw_end(w);
  }
  if (with_extras && m && m->ncomponents) write_components(w, m->components, m->ncomponents);
  souk_jw_key(w, "allowed_mentions");
  souk_jw_obj(w);
  souk_jw_key(w, "parse");
  souk_jw_arr(w);
  souk_jw_end(w);
  souk_jw_end(w);
  if (flags) {
    souk_jw_key(w, "flags");
    souk_jw_i64(w, flags);
  }
}

void souk__dmsg_modal(souk_jw_t *w, const souk_modal_t *m) {
  souk_jw_key(w, "custom_id");
  souk_jw_str(w, m->custom_id);
  souk_jw_key(w, "title");
  souk__dmsg_str_max(w, m->title && m->title[0] ? m->title : "Form", MODAL_TITLE_MAX);
  souk_jw_key(w, "components");
  souk_jw_arr(w);
  for (size_t i = 0; i < m->nfields && i < 5; i++) {
    const souk_modal_field_t *f = &m->fields[i];
    souk_jw_obj(w);
    souk_jw_key(w, "type");
    souk_jw_i64(w, 1);
    souk_jw_key(w, "components");
    souk_jw_arr(w);
    souk_jw_obj(w);
    souk_jw_key(w, "type");
    souk_jw_i64(w, 4);
    souk_jw_key(w, "custom_id");
    souk_jw_str(w, f->custom_id ? f->custom_id : "");
    souk_jw_key(w, "style");
    souk_jw_i64(w, f->paragraph ? 2 : 1);
    souk_jw_key(w, "label");
    souk__dmsg_str_max(w, f->label && f->label[0] ? f->label : "Value", MODAL_LABEL_MAX);
    souk_jw_key(w, "required");
    souk_jw_bool(w, f->required);
    if (f->min_length) {
      souk_jw_key(w, "min_length");
      souk_jw_i64(w, f->min_length > MODAL_VALUE_MAX ? MODAL_VALUE_MAX : f->min_length);
    }
    if (f->max_length) {
      souk_jw_key(w, "max_length");
      souk_jw_i64(w, f->max_length > MODAL_VALUE_MAX ? MODAL_VALUE_MAX : f->max_length);
    }
    if (f->placeholder && f->placeholder[0]) {
      souk_jw_key(w, "placeholder");
      souk__dmsg_str_max(w, f->placeholder, 100);
    }
    if (f->value && f->value[0]) {
      souk_jw_key(w, "value");
      souk__dmsg_str_max(w, f->value, MODAL_VALUE_MAX);
    }
    souk_jw_end(w);
    souk_jw_end(w);
    souk_jw_end(w);
  }
  souk_jw_end(w);
}

void souk__dmsg_choices(souk_jw_t *w, const souk_cmd_choice_t *c, size_t n,
                        souk_cmd_opt_type_t type) {
  souk_jw_key(w, "choices");
  souk_jw_arr(w);
  for (size_t i = 0; i < n && i < SOUK_CMD_CHOICES_MAX; i++) {
    if (!c[i].name || !c[i].value || !c[i].name[0]) continue;
    /* Numbers are parsed and written again, so a value like "007",
     * "+5", "0x1A" or "inf" never reaches Discord as broken JSON. */
    int64_t iv = 0;
    double dv = 0;
    if (type == SOUK_OPT_INTEGER) {
      char *end;
      errno = 0;
      long long v = strtoll(c[i].value, &end, 10);
      if (end == c[i].value || *end || errno) continue;
      iv = v;
    } else if (type == SOUK_OPT_NUMBER) {
      char *end;
      dv = strtod(c[i].value, &end);
      if (end == c[i].value || *end || !isfinite(dv)) continue;
    }
    souk_jw_obj(w);
    souk_jw_key(w, "name");
    souk__dmsg_str_max(w, c[i].name, CHOICE_NAME_MAX);
    souk_jw_key(w, "value");
    if (type == SOUK_OPT_INTEGER) souk_jw_i64(w, iv);
    else if (type == SOUK_OPT_NUMBER) write_number(w, dv);
    else souk__dmsg_str_max(w, c[i].value, CHOICE_NAME_MAX);
    souk_jw_end(w);
  }
  souk_jw_end(w);
}

/* ---- application commands ---------------------------------------------- */

static void write_option(souk_jw_t *w, const souk_cmd_option_t *o) {
  souk_jw_obj(w);
  souk_jw_key(w, "type");
  souk_jw_i64(w, o->type);
  souk_jw_key(w, "name");
  souk_jw_str(w, o->name);
  souk_jw_key(w, "description");
  souk_jw_str(w, o->description);
  if (o->required) {
    souk_jw_key(w, "required");
    souk_jw_bool(w, true);
  }
  if (o->autocomplete) {
    souk_jw_key(w, "autocomplete");
    souk_jw_bool(w, true);
  }
  if (o->choices) {
    souk_jw_key(w, "choices");
    souk_jw_arr(w);
    for (const souk_cmd_choice_t *c = o->choices; c->name; c++) {
      souk_jw_obj(w);
      souk_jw_key(w, "name");
      souk_jw_str(w, c->name);
      souk_jw_key(w, "value");
      if (o->type == SOUK_OPT_STRING) souk_jw_str(w, c->value);
      else souk_jw_raw(w, c->value, strlen(c->value));
      souk_jw_end(w);
    }
    souk_jw_end(w);
  }
  if (o->type == SOUK_OPT_INTEGER) {
    if (o->has_min) souk_jw_key(w, "min_value"), souk_jw_i64(w, o->min_int);
    if (o->has_max) souk_jw_key(w, "max_value"), souk_jw_i64(w, o->max_int);
  } else if (o->type == SOUK_OPT_NUMBER) {
    if (o->has_min) souk_jw_key(w, "min_value"), write_number(w, o->min_num);
    if (o->has_max) souk_jw_key(w, "max_value"), write_number(w, o->max_num);
  } else if (o->type == SOUK_OPT_STRING) {
    if (o->min_length) souk_jw_key(w, "min_length"), souk_jw_i64(w, o->min_length);
    if (o->max_length) souk_jw_key(w, "max_length"), souk_jw_i64(w, o->max_length);
  }
  souk_jw_end(w);
}

static void write_options_of(souk_jw_t *w, const struct souk_command *c) {
  bool any = (c->subcommands && c->subcommands[0].name) || (c->options && c->options[0].name);
  if (!any) return;
  souk_jw_key(w, "options");
  souk_jw_arr(w);
  if (c->subcommands) {
    for (const struct souk_command *s = c->subcommands; s->name; s++) {
      souk_jw_obj(w);
      souk_jw_key(w, "type");
      souk_jw_i64(w, s->subcommands ? 2 : 1);
      souk_jw_key(w, "name");
      souk_jw_str(w, s->name);
      souk_jw_key(w, "description");
      souk_jw_str(w, s->description);
      write_options_of(w, s);
      souk_jw_end(w);
    }
  } else {
    for (const souk_cmd_option_t *o = c->options; o->name; o++) write_option(w, o);
  }
  souk_jw_end(w);
}

void souk__dmsg_commands(souk_buf_t *out) {
  souk_jw_t w;
  souk_jw_init(&w, out);
  souk_jw_arr(&w);
  const char *module;
  for (size_t i = 0; i < souk_cmd_count(); i++) {
    const struct souk_command *c = souk_cmd_at(i, &module);
    souk_jw_obj(&w);
    souk_jw_key(&w, "type");
    souk_jw_i64(&w, 1);
    souk_jw_key(&w, "name");
    souk_jw_str(&w, c->name);
    souk_jw_key(&w, "description");
    souk_jw_str(&w, c->description);
    write_options_of(&w, c);
    /* Discord hides a command from members without these permissions (an
     * admin can change that per server); the core checks them anyway. */
    uint64_t perms = c->permissions;
    if (c->flags & SOUK_CMD_OWNER_ONLY) perms |= SOUK_PERM_ADMINISTRATOR;
    if (perms) {
      /* Discord's docs show a string; its OpenAPI spec (which the fake
       * checks) an integer, which Discord accepts as well. */
      souk_jw_key(&w, "default_member_permissions");
      souk_jw_u64(&w, perms);
    }
    /* Interaction contexts: 0 guild, 1 the bot's DM. */
    souk_jw_key(&w, "contexts");
    souk_jw_arr(&w);
    souk_jw_i64(&w, 0);
    if (!(c->flags & SOUK_CMD_GUILD_ONLY)) souk_jw_i64(&w, 1);
    souk_jw_end(&w);
    souk_jw_end(&w);
  }
  souk_jw_end(&w);
}
