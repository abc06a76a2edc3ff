/* The setup module: /setup server and /setup user, step-by-step wizards
 * over the settings registry, and /settings view, set and reset.
 *
 * Nothing here names another module's settings: the wizards walk every
 * setting that names a step (wizard.h), so the SkyBlock, stats, scanner,
 * market and economy settings appear as their modules declare them.
 *
 * A wizard's place (its page) is kept in the store's kv table, namespace
 * "setup.wizard", per guild and admin (or per user), for setup.wizard_ttl:
 * every button press checks it, so a press on an old message shows the
 * current step, and /setup resumes where it was, after a restart too.
 * Answers are checked as they are given, with the rules of the config
 * file (souk_setting_check) and, for a channel, whether the bot can see
 * it and post there; a form with a bad answer changes nothing and shows
 * the step again with the reasons. */
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/module.h"
#include "souk/settings.h"
#include "souk/store.h"
#include "souk/task.h"
#include "wizard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The store from the init context; NULL: none (the wizards refuse). */
static souk_store_t *g_store;

#define WIZ_NS       "setup.wizard"
#define SETUP_PREFIX "setup:"
#define SETUP_COLOR  0x56CCF2
#define VALUE_MAX    256

typedef struct setup_conf {
  int64_t wizard_ttl_ms;
} setup_conf_t;

static setup_conf_t setup_conf;

#define K(field) offsetof(setup_conf_t, field)
static const souk_conf_key_t setup_conf_keys[] = {
    {"wizard_ttl", SOUK_CONF_DURATION, K(wizard_ttl_ms), "1h", 60000, 7 * 86400000LL, NULL,
     SOUK_CONF_RUNTIME, "a setup wizard left halfway resumes where it was within this time"},
    {0},
};
#undef K

/* ---- values for people ------------------------------------------------------ */

static const char *source_text(souk_setting_source_t src, char kind) {
  switch (src) {
  case SOUK_SETTING_CONFIG:
    return "from the config file";
  case SOUK_SETTING_SET:
    return kind == 's' ? "set by an admin" : "set by you";
  default:
    return "default";
  }
}

static uint64_t scope_id(char kind, const souk_cmd_ctx_t *ctx) {
  return kind == 's' ? ctx->guild_id : ctx->user_id;
}

/* "**Label**: value (source)" */
static void describe(souk_buf_t *b, const souk_setting_t *s, uint64_t scope, char kind) {
  char shown[VALUE_MAX], text[VALUE_MAX];
  souk_setting_source_t src = SOUK_SETTING_DEFAULT;
  souk_setting_display(scope, s->key, shown, sizeof shown);
  souk_setting_get(scope, s->key, text, sizeof text, &src);
  souk_buf_printf(b, "**%s**: %s *(%s)*\n", s->label ? s->label : s->key,
                  shown[0] ? shown : "not set", source_text(src, kind));
}

/* What to type, for a form field's placeholder. */
static void hint(const souk_setting_t *s, char *out, size_t cap) {
  switch (s->type) {
  case SOUK_SETTING_CHANNEL:
    snprintf(out, cap, "a channel: its mention or ID");
    break;
  case SOUK_SETTING_ROLE:
    snprintf(out, cap, "a role: its mention or ID");
    break;
  case SOUK_SETTING_TIMEZONE:
    snprintf(out, cap, "an IANA time zone, like Europe/Paris or UTC");
    break;
  case SOUK_SETTING_INT:
  case SOUK_SETTING_MONEY:
    if (s->max)
      snprintf(out, cap, "a number from %" PRId64 " to %" PRId64 "%s", s->min, s->max,
               s->type == SOUK_SETTING_MONEY && s->decimals ? " (minor units)" : "");
    else
      snprintf(out, cap, "a number");
    break;
  default:
    snprintf(out, cap, "%.90s", s->description ? s->description : "");
  }
}

/* A channel's id in what a user typed: "<#123>" or "123"; 0 if none. */
static uint64_t channel_in(const char *text) {
  const char *p = text;
  while (*p == ' ')
    p++;
  if (p[0] == '<' && p[1] == '#') p += 2;
  char *end;
  unsigned long long v = strtoull(p, &end, 10);
  return end != p ? (uint64_t)v : 0;
}

/* Check an answer for s: the registry's rules, then for a channel of a
 * guild, that the bot can see it and post there.  0, or SOUK_EINVAL with
 * the reason in err. */
static int check_answer(const souk_setting_t *s, uint64_t guild, const char *text, char *err,
                        size_t cap) {
  int rc = souk_setting_check(s->key, text, err, cap);
  if (rc) return rc;
  if (s->type == SOUK_SETTING_CHANNEL && guild && text[0]) {
    uint64_t ch = channel_in(text);
    if (!ch || !souk_discord_bot_can(guild, ch, SOUK_PERM_VIEW_CHANNEL | SOUK_PERM_SEND_MESSAGES)) {
      snprintf(err, cap,
               "that channel does not exist in this server, or I cannot see it and post there");
      return SOUK_EINVAL;
    }
  }
  return 0;
}

/* ---- wizard state in the store ---------------------------------------------------- */

typedef enum action {
  A_START, /* /setup: resume or begin */
  A_NEXT,
  A_BACK,
  A_CANCEL,
  A_PICK, /* a select menu's answer */
  A_FORM, /* a form's answers */
} action_t;

typedef struct wjob {
  souk_cmd_ctx_t *ctx;
  char kind; /* 's' server, 'u' user */
  char key[64];
  action_t action;
  int64_t page;   /* the page pressed on; -1 for /setup */
  int64_t stored; /* the page in the store; -1: none (or expired) */
  int64_t shown;  /* the page to show; -1: finished or cancelled */
  int64_t npages;
  bool resumed;
  /* A_PICK: item of the page and the value; A_FORM: the fields. */
  size_t item;
  char value[VALUE_MAX];
  char fields[WIZARD_TEXTS_MAX][VALUE_MAX];
  bool has[WIZARD_TEXTS_MAX];
} wjob_t;

static void state_key(char *out, size_t cap, char kind, const souk_cmd_ctx_t *ctx) {
  if (kind == 's')
    snprintf(out, cap, "s:%" PRIu64 ":%" PRIu64, ctx->guild_id, ctx->user_id);
  else
    snprintf(out, cap, "u:%" PRIu64, ctx->user_id);
}

/* Read the stored page, decide the page to show, and store it (or delete
 * the state when the wizard ends). */
static int state_tx(souk_db_t *db, void *ud) {
  wjob_t *j = ud;
  j->stored = -1;
  j->resumed = false;
  souk_buf_t v;
  souk_buf_init(&v);
  int64_t at = 0;
  int rc = souk_db_kv_get(db, WIZ_NS, j->key, &v, &at);
  int64_t now = (int64_t)souk_unix_ms();
  if (rc == 0 && v.len && now - at <= setup_conf.wizard_ttl_ms) {
    long long p = strtoll(v.data, NULL, 10);
    if (p >= 0) j->stored = p;
  }
  souk_buf_free(&v);
  if (rc != 0 && rc != SOUK_ENOTFOUND) return rc;
  int64_t last = j->npages - 1;
  if (j->action == A_START) {
    j->shown = j->stored >= 0 && j->stored <= last ? j->stored : 0;
    j->resumed = j->stored > 0 && j->stored <= last;
  } else if (j->stored < 0) {
    j->shown = -2; /* nothing in progress: the press is from an ended wizard */
    return 0;
  } else if (j->stored != j->page) {
    j->shown = j->stored > last ? last : j->stored; /* an older message: show where it is */
    return 0;
  } else if (j->action == A_NEXT) {
    j->shown = j->page >= last ? -1 : j->page + 1;
  } else if (j->action == A_BACK) {
    j->shown = j->page > 0 ? j->page - 1 : 0;
  } else if (j->action == A_CANCEL) {
    j->shown = -1;
  } else {
    j->shown = j->page;
  }
  if (j->shown < 0) {
    rc = souk_db_kv_del(db, WIZ_NS, j->key);
    return rc == SOUK_ENOTFOUND ? 0 : rc;
  }
  char page[24];
  int n = snprintf(page, sizeof page, "%" PRId64, j->shown);
  return souk_db_kv_put(db, WIZ_NS, j->key, page, (size_t)n);
}

/* ---- rendering -------------------------------------------------------------------- */

typedef struct render {
  souk_msg_t m;
  souk_embed_t e;
  souk_buf_t desc;
  char title[160], footer[160];
  souk_component_t c[WIZARD_PICKS_MAX + 4];
  char ids[WIZARD_PICKS_MAX + 4][SOUK_CMD_CUSTOM_ID_MAX + 1];
  char placeholders[WIZARD_PICKS_MAX][160];
  souk_select_option_t opts[WIZARD_PICKS_MAX][25];
} render_t;

static void nav_button(render_t *r, size_t *n, char kind, char act, int64_t page, const char *label,
                       souk_button_style_t style, bool disabled, bool new_row) {
  char st[48];
  snprintf(st, sizeof st, "%c:%c:%" PRId64, kind, act, page);
  souk_cmd_custom_id(r->ids[*n], sizeof r->ids[*n], SETUP_PREFIX, st);
  r->c[*n] = (souk_component_t){.custom_id = r->ids[*n],
                                .label = label,
                                .style = style,
                                .disabled = disabled,
                                .new_row = new_row};
  (*n)++;
}

/* The page of a wizard, with a note (resumed, saved) and errors above it. */
static void render_page(render_t *r, const wizard_t *w, char kind, uint64_t scope, int64_t page,
                        const char *note) {
  memset(r, 0, sizeof *r);
  souk_buf_init(&r->desc);
  const wizard_page_t *p = &w->pages[page];
  char step[64];
  wizard_step_title(p->step, step, sizeof step);
  snprintf(r->title, sizeof r->title, "%s setup \xE2\x80\x94 %s (step %" PRId64 " of %zu)",
           kind == 's' ? "Server" : "Your", step, page + 1, w->npages);
  if (note && note[0]) souk_buf_printf(&r->desc, "%s\n\n", note);
  for (size_t i = 0; i < p->n; i++) {
    const souk_setting_t *s = w->items[p->first + i].s;
    describe(&r->desc, s, scope, kind);
    if (s->description) souk_buf_printf(&r->desc, "%s\n", s->description);
    souk_buf_putc(&r->desc, '\n');
  }
  snprintf(r->footer, sizeof r->footer, "%s%s", p->npicks ? "Pick from the menus. " : "",
           p->ntexts ? "Edit values opens a form; an empty field keeps its value." : "");
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++) {
    const wizard_item_t *it = &w->items[p->first + i];
    if (!it->pick) continue;
    size_t k = n;
    char st[48], shown[VALUE_MAX];
    snprintf(st, sizeof st, "%c:v:%" PRId64 ":%zu", kind, page, i);
    souk_cmd_custom_id(r->ids[k], sizeof r->ids[k], SETUP_PREFIX, st);
    souk_setting_display(scope, it->s->key, shown, sizeof shown);
    snprintf(r->placeholders[k], sizeof r->placeholders[k], "%.45s: %.90s",
             it->s->label ? it->s->label : it->s->key, shown);
    size_t no = 0;
    if (it->s->type == SOUK_SETTING_BOOL) {
      r->opts[k][no++] = (souk_select_option_t){"On", "true", NULL};
      r->opts[k][no++] = (souk_select_option_t){"Off", "false", NULL};
    } else {
      for (const char *const *c = it->s->choices; c && *c && no < 25; c++)
        r->opts[k][no++] = (souk_select_option_t){*c, *c, NULL};
    }
    r->c[n++] = (souk_component_t){
        .custom_id = r->ids[k], .label = r->placeholders[k], .options = r->opts[k], .noptions = no};
  }
  bool last = page + 1 >= (int64_t)w->npages;
  nav_button(r, &n, kind, 'b', page, "Back", SOUK_BUTTON_SECONDARY, page == 0, true);
  if (p->ntexts)
    nav_button(r, &n, kind, 'e', page, "Edit values", SOUK_BUTTON_PRIMARY, false, false);
  nav_button(r, &n, kind, 'n', page, last ? "Finish" : "Next", SOUK_BUTTON_SUCCESS, false, false);
  nav_button(r, &n, kind, 'x', page, "Cancel", SOUK_BUTTON_DANGER, false, false);
  r->e = (souk_embed_t){
      .title = r->title, .description = r->desc.data, .color = SETUP_COLOR, .footer = r->footer};
  r->m = (souk_msg_t){
      .embeds = &r->e, .nembeds = 1, .components = r->c, .ncomponents = n, .ephemeral = true};
}

/* Every setting of the wizard with its value: the end of the wizard. */
static void render_summary(render_t *r, const wizard_t *w, char kind, uint64_t scope,
                           const char *title) {
  memset(r, 0, sizeof *r);
  souk_buf_init(&r->desc);
  snprintf(r->title, sizeof r->title, "%s", title);
  for (size_t i = 0; i < w->nitems; i++)
    describe(&r->desc, w->items[i].s, scope, kind);
  snprintf(r->footer, sizeof r->footer, "Change any of them later with /settings set or /setup %s.",
           kind == 's' ? "server" : "user");
  r->e = (souk_embed_t){
      .title = r->title, .description = r->desc.data, .color = SETUP_COLOR, .footer = r->footer};
  r->m = (souk_msg_t){.embeds = &r->e, .nembeds = 1, .ephemeral = true};
}

static void finish_render(souk_cmd_ctx_t *ctx, render_t *r) {
  if (ctx->kind == SOUK_CMD_KIND_COMMAND)
    souk_cmd_reply(ctx, &r->m);
  else
    souk_cmd_update(ctx, &r->m);
  souk_buf_free(&r->desc);
}

/* ---- answers ------------------------------------------------------------------------ */

/* Apply a pick or a form to the page's settings; problems go to errs (one
 * line each).  A form is all or nothing: one bad answer and none is set. */
static void apply_answers(wjob_t *j, const wizard_t *w, souk_buf_t *note) {
  const wizard_page_t *p = &w->pages[j->page];
  uint64_t scope = scope_id(j->kind, j->ctx);
  uint64_t guild = j->kind == 's' ? j->ctx->guild_id : 0;
  char err[256];
  if (j->action == A_PICK) {
    if (j->item >= p->n || !w->items[p->first + j->item].pick) {
      souk_buf_puts(note, "That menu is not on this step any more.");
      return;
    }
    const souk_setting_t *s = w->items[p->first + j->item].s;
    if (check_answer(s, guild, j->value, err, sizeof err) ||
        souk_setting_set(scope, s->key, j->value, j->ctx->user_id, err, sizeof err))
      souk_buf_printf(note, "\xE2\x9A\xA0 **%s**: %s.", s->label, err);
    else
      souk_buf_printf(note, "Saved **%s**.", s->label);
    return;
  }
  /* The form: fields f0.. are the page's text settings in order. */
  const souk_setting_t *texts[WIZARD_TEXTS_MAX];
  size_t nt = 0;
  for (size_t i = 0; i < p->n && nt < WIZARD_TEXTS_MAX; i++)
    if (!w->items[p->first + i].pick) texts[nt++] = w->items[p->first + i].s;
  size_t bad = 0, given = 0;
  for (size_t i = 0; i < nt; i++) {
    if (!j->has[i] || !j->fields[i][0]) continue;
    given++;
    if (check_answer(texts[i], guild, j->fields[i], err, sizeof err)) {
      souk_buf_printf(note, "\xE2\x9A\xA0 **%s**: %s.\n", texts[i]->label, err);
      bad++;
    }
  }
  if (bad) {
    souk_buf_puts(note, "Nothing on this step was changed: fix the answer and press Edit values "
                        "again.");
    return;
  }
  for (size_t i = 0; i < nt; i++) {
    if (!j->has[i] || !j->fields[i][0]) continue;
    if (souk_setting_set(scope, texts[i]->key, j->fields[i], j->ctx->user_id, err, sizeof err))
      souk_buf_printf(note, "\xE2\x9A\xA0 **%s**: %s.\n", texts[i]->label, err);
  }
  if (!note->len) souk_buf_puts(note, given ? "Saved." : "Nothing was changed.");
}

static void state_done(void *ud, int status) {
  wjob_t *j = ud;
  souk_cmd_ctx_t *ctx = j->ctx;
  wizard_t *w = souk_malloc(sizeof *w);
  wizard_build_registry(w, j->kind == 's' ? SOUK_SETTING_GUILD : SOUK_SETTING_USER);
  uint64_t scope = scope_id(j->kind, ctx);
  render_t *r = souk_malloc(sizeof *r);
  souk_buf_t note;
  souk_buf_init(&note);
  if (status) {
    souk_cmd_errorf(ctx, "The setup's progress cannot be read right now (%s). Try again.",
                    souk_strerror(status));
  } else if (j->shown == -2) {
    souk_msg_t m = {.content = "This setup has ended or expired. Run /setup again to continue.",
                    .ephemeral = true};
    souk_cmd_reply(ctx, &m);
  } else if (j->shown == -1) {
    render_summary(r, w, j->kind, scope,
                   j->action == A_CANCEL ? "Setup cancelled: what was saved stays"
                                         : "Setup complete");
    finish_render(ctx, r);
  } else {
    if (j->action == A_START && j->resumed)
      souk_buf_printf(&note, "Resuming where you left off.");
    else if (j->action != A_START && j->stored != j->page)
      souk_buf_puts(&note, "That was an older message of this setup; here is where it is now.");
    else if (j->action == A_PICK || j->action == A_FORM)
      apply_answers(j, w, &note);
    render_page(r, w, j->kind, scope, j->shown, note.data);
    finish_render(ctx, r);
  }
  souk_buf_free(&note);
  souk_free(r);
  souk_free(w);
  souk_free(j);
}

static void run_state(wjob_t *j) {
  souk_store_t *st = g_store;
  int rc = st ? souk_store_tx_async(st, state_tx, state_done, j) : SOUK_ENOTSUP;
  if (rc) {
    souk_cmd_errorf(j->ctx, "The setup needs the store, which is not available (%s).",
                    souk_strerror(rc));
    souk_free(j);
  }
}

static wjob_t *wjob_new(souk_cmd_ctx_t *ctx, char kind, action_t action, int64_t page) {
  wjob_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->kind = kind;
  j->action = action;
  j->page = page;
  state_key(j->key, sizeof j->key, kind, ctx);
  wizard_t *w = souk_malloc(sizeof *w);
  wizard_build_registry(w, kind == 's' ? SOUK_SETTING_GUILD : SOUK_SETTING_USER);
  j->npages = (int64_t)w->npages;
  souk_free(w);
  return j;
}

static void start(souk_cmd_ctx_t *ctx, char kind) {
  wjob_t *j = wjob_new(ctx, kind, A_START, -1);
  if (j->npages == 0) {
    souk_cmd_replyf(ctx, "There is nothing to set up here: no module asks for %s settings.",
                    kind == 's' ? "server" : "personal");
    souk_free(j);
    return;
  }
  run_state(j);
}

static void cmd_setup_server(souk_cmd_ctx_t *ctx) { start(ctx, 's'); }
static void cmd_setup_user(souk_cmd_ctx_t *ctx) { start(ctx, 'u'); }

/* The form of a page's text settings, pre-filled with their values. */
static void open_form(souk_cmd_ctx_t *ctx, char kind, int64_t page) {
  wizard_t *w = souk_malloc(sizeof *w);
  wizard_build_registry(w, kind == 's' ? SOUK_SETTING_GUILD : SOUK_SETTING_USER);
  if (page < 0 || page >= (int64_t)w->npages || !w->pages[page].ntexts) {
    souk_free(w);
    souk_cmd_replyf(ctx, "This step has nothing to type in any more; run /setup again.");
    return;
  }
  const wizard_page_t *p = &w->pages[page];
  souk_modal_field_t f[WIZARD_TEXTS_MAX];
  char ids[WIZARD_TEXTS_MAX][8], vals[WIZARD_TEXTS_MAX][VALUE_MAX], hints[WIZARD_TEXTS_MAX][100];
  char labels[WIZARD_TEXTS_MAX][48];
  size_t n = 0;
  uint64_t scope = scope_id(kind, ctx);
  for (size_t i = 0; i < p->n && n < WIZARD_TEXTS_MAX; i++) {
    const souk_setting_t *s = w->items[p->first + i].s;
    if (w->items[p->first + i].pick) continue;
    snprintf(ids[n], sizeof ids[n], "f%zu", n);
    souk_setting_get(scope, s->key, vals[n], sizeof vals[n], NULL);
    hint(s, hints[n], sizeof hints[n]);
    snprintf(labels[n], sizeof labels[n], "%.45s", s->label ? s->label : s->key);
    f[n] = (souk_modal_field_t){
        .custom_id = ids[n],
        .label = labels[n],
        .required = false,
        .max_length = (uint16_t)(s->type == SOUK_SETTING_STRING && s->max ? s->max : VALUE_MAX - 1),
        .placeholder = hints[n],
        .value = vals[n][0] ? vals[n] : NULL};
    n++;
  }
  char id[48], title[64], step[48];
  snprintf(id, sizeof id, SETUP_PREFIX "%c:m:%" PRId64, kind, page);
  wizard_step_title(p->step, step, sizeof step);
  snprintf(title, sizeof title, "%.44s", step);
  souk_modal_t m = {.custom_id = id, .title = title, .fields = f, .nfields = n};
  souk_cmd_modal(ctx, &m);
  souk_free(w);
}

/* custom_id state: "<s|u>:<b|n|x|e|v|m>:<page>[:<item>]". */
static void setup_press(souk_cmd_ctx_t *ctx) {
  const char *st = ctx->state ? ctx->state : "";
  char kind = 0, act = 0;
  long long page = -1;
  size_t item = 0;
  int used = 0;
  bool ok = sscanf(st, "%c:%c:%lld%n", &kind, &act, &page, &used) == 3 && page >= 0 &&
            (kind == 's' || kind == 'u');
  if (ok && act == 'v')
    ok = sscanf(st + used, ":%zu%n", &item, &used) == 1 && used > 0;
  else if (ok)
    ok = st[used] == '\0';
  if (!ok) {
    souk_cmd_replyf(ctx, "This setup button is no longer valid; run /setup again.");
    return;
  }
  if (kind == 's' && (!ctx->guild_id ||
                      !(ctx->permissions & (SOUK_PERM_MANAGE_GUILD | SOUK_PERM_ADMINISTRATOR)))) {
    souk_msg_t m = {.content = "You need the Manage Server permission to set up this server.",
                    .ephemeral = true};
    souk_cmd_reply(ctx, &m);
    return;
  }
  if (act == 'e') {
    /* A form must open within Discord's 3 s: no store round trip first;
     * its submission checks the wizard's state. */
    open_form(ctx, kind, page);
    return;
  }
  action_t a = act == 'n'   ? A_NEXT
               : act == 'b' ? A_BACK
               : act == 'x' ? A_CANCEL
               : act == 'v' ? A_PICK
                            : A_FORM;
  if (act != 'n' && act != 'b' && act != 'x' && act != 'v' && act != 'm') {
    souk_cmd_replyf(ctx, "This setup button is no longer valid; run /setup again.");
    return;
  }
  wjob_t *j = wjob_new(ctx, kind, a, page);
  if (a == A_PICK) {
    j->item = item;
    snprintf(j->value, sizeof j->value, "%s", ctx->nvalues ? ctx->values[0] : "");
  } else if (a == A_FORM) {
    for (size_t i = 0; i < WIZARD_TEXTS_MAX; i++) {
      char id[8];
      snprintf(id, sizeof id, "f%zu", i);
      const char *v = souk_cmd_field_value(ctx, id);
      if (!v) continue;
      j->has[i] = true;
      snprintf(j->fields[i], sizeof j->fields[i], "%s", v);
    }
  }
  run_state(j);
}

/* ---- /settings -------------------------------------------------------------------------- */

static bool may_set_guild(const souk_cmd_ctx_t *ctx) {
  return ctx->guild_id && (ctx->permissions & (SOUK_PERM_MANAGE_GUILD | SOUK_PERM_ADMINISTRATOR));
}

static void settings_view(souk_cmd_ctx_t *ctx) {
  const char *only = souk_cmd_arg_str(ctx->args, "module", NULL);
  souk_buf_t g, u;
  souk_buf_init(&g);
  souk_buf_init(&u);
  size_t shown = 0, total = 0;
  for (size_t i = 0; i < souk_setting_count(); i++) {
    const char *module = NULL;
    const souk_setting_t *s = souk_setting_at(i, &module);
    if (only && module && strcmp(only, module) != 0) continue;
    bool guild = s->scope == SOUK_SETTING_GUILD;
    if (guild && !ctx->guild_id) continue;
    total++;
    souk_buf_t *b = guild ? &g : &u;
    /* Keep within an embed's 4096 characters. */
    if (b->len > 3600) continue;
    char shown_v[VALUE_MAX], text[VALUE_MAX];
    souk_setting_source_t src = SOUK_SETTING_DEFAULT;
    souk_setting_display(guild ? ctx->guild_id : ctx->user_id, s->key, shown_v, sizeof shown_v);
    souk_setting_get(guild ? ctx->guild_id : ctx->user_id, s->key, text, sizeof text, &src);
    souk_buf_printf(b, "`%s` **%s** \xE2\x80\x94 %s\n", s->key, shown_v[0] ? shown_v : "not set",
                    source_text(src, guild ? 's' : 'u'));
    shown++;
  }
  if (!total) {
    souk_cmd_replyf(ctx,
                    only ? "There are no settings of module `%s` here."
                         : "There are no "
                           "settings here.%s",
                    only ? only : "");
    souk_buf_free(&g);
    souk_buf_free(&u);
    return;
  }
  souk_embed_t e[2];
  size_t ne = 0;
  char more[96] = "";
  if (shown < total)
    snprintf(more, sizeof more, "%zu more: narrow with /settings view module:<name>",
             total - shown);
  if (g.len)
    e[ne++] = (souk_embed_t){.title = "This server's settings",
                             .description = g.data,
                             .color = SETUP_COLOR,
                             .footer = more[0] ? more : "Change one with /settings set"};
  if (u.len)
    e[ne++] = (souk_embed_t){.title = "Your settings",
                             .description = u.data,
                             .color = SETUP_COLOR,
                             .footer = more[0] ? more : "Change one with /settings set"};
  souk_msg_t m = {.embeds = e, .nembeds = ne, .ephemeral = true};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&g);
  souk_buf_free(&u);
}

static const souk_setting_t *setting_for(souk_cmd_ctx_t *ctx, const char *key) {
  const souk_setting_t *s = souk_setting_find(key, NULL);
  if (!s) {
    souk_cmd_replyf(ctx, "There is no setting `%s`. See /settings view.", key);
    return NULL;
  }
  if (s->scope == SOUK_SETTING_GUILD && !may_set_guild(ctx)) {
    souk_cmd_replyf(ctx,
                    ctx->guild_id ? "`%s` is a server setting: it needs the Manage Server "
                                    "permission."
                                  : "`%s` is a server setting: use it in the server.",
                    key);
    return NULL;
  }
  return s;
}

static void settings_set(souk_cmd_ctx_t *ctx) {
  const char *key = souk_cmd_arg_str(ctx->args, "key", "");
  const char *value = souk_cmd_arg_str(ctx->args, "value", "");
  const souk_setting_t *s = setting_for(ctx, key);
  if (!s) return;
  bool guild = s->scope == SOUK_SETTING_GUILD;
  uint64_t scope = guild ? ctx->guild_id : ctx->user_id;
  char err[256], before[VALUE_MAX], after[VALUE_MAX];
  souk_setting_display(scope, key, before, sizeof before);
  if (check_answer(s, guild ? ctx->guild_id : 0, value, err, sizeof err) ||
      souk_setting_set(scope, key, value, ctx->user_id, err, sizeof err)) {
    souk_cmd_replyf(ctx, "`%s` was not changed: %s.", key, err);
    return;
  }
  souk_setting_display(scope, key, after, sizeof after);
  souk_cmd_replyf(ctx, "**%s** is now %s (was %s).", s->label ? s->label : key, after,
                  before[0] ? before : "not set");
}

static void settings_reset(souk_cmd_ctx_t *ctx) {
  const char *key = souk_cmd_arg_str(ctx->args, "key", "");
  const souk_setting_t *s = setting_for(ctx, key);
  if (!s) return;
  uint64_t scope = s->scope == SOUK_SETTING_GUILD ? ctx->guild_id : ctx->user_id;
  int rc = souk_setting_reset(scope, key, ctx->user_id);
  if (rc) {
    souk_cmd_errorf(ctx, "`%s` was not reset: %s.", key, souk_strerror(rc));
    return;
  }
  char after[VALUE_MAX];
  souk_setting_display(scope, key, after, sizeof after);
  souk_cmd_replyf(ctx, "**%s** is back to %s.", s->label ? s->label : key,
                  after[0] ? after : "not set");
}

/* Keys the caller may set that contain what was typed. */
static void complete_key(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  const char *typed = f && f->text ? f->text : "";
  souk_cmd_choice_t out[SOUK_CMD_CHOICES_MAX];
  size_t n = 0;
  for (size_t i = 0; i < souk_setting_count() && n < SOUK_CMD_CHOICES_MAX; i++) {
    const souk_setting_t *s = souk_setting_at(i, NULL);
    if (s->scope == SOUK_SETTING_GUILD && !may_set_guild(ctx)) continue;
    if (strstr(s->key, typed)) out[n++] = (souk_cmd_choice_t){s->key, s->key};
  }
  souk_cmd_choices(ctx, out, n);
}

/* ---- forgetting wizards left for good ---------------------------------------------------------
 */

typedef struct prune_job {
  souk_task_ctx_t *task;
} prune_job_t;

static int prune_tx(souk_db_t *db, void *ud) {
  (void)ud;
  return souk_db_runf(db, NULL, "DELETE FROM kv WHERE namespace = ? AND updated_at < ?", "si",
                      WIZ_NS, (int64_t)souk_unix_ms() - setup_conf.wizard_ttl_ms);
}

static void prune_done(void *ud, int status) {
  prune_job_t *j = ud;
  souk_task_done(j->task, status);
  souk_free(j);
}

/* The state of a wizard nobody came back to within setup.wizard_ttl. */
static void prune_run(souk_task_ctx_t *t) {
  souk_store_t *st = g_store;
  if (!st) {
    souk_task_done(t, 0);
    return;
  }
  prune_job_t *j = souk_calloc(1, sizeof *j);
  j->task = t;
  int rc = souk_store_tx_async(st, prune_tx, prune_done, j);
  if (rc) {
    souk_free(j);
    souk_task_done(t, rc);
  }
}

static const struct souk_task setup_tasks[] = {
    {.name = "setup.prune",
     .period_ms = 3600000,
     .jitter_ms = 60000,
     .budget_ms = 10000,
     .handler = prune_run,
     .scope = SOUK_TASK_SCOPE_CLUSTER},
    {0},
};

/* ---- tables ---------------------------------------------------------------------------------- */

static const souk_cmd_option_t opt_module[] = {
    {.name = "module",
     .description = "Only this module's settings",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {0},
};
static const souk_cmd_option_t opt_set[] = {
    {.name = "key",
     .description = "The setting, e.g. economy.enabled",
     .type = SOUK_OPT_STRING,
     .required = true,
     .autocomplete = true,
     .max_length = 64},
    {.name = "value",
     .description = "Its new value",
     .type = SOUK_OPT_STRING,
     .required = true,
     .max_length = 200},
    {0},
};
static const souk_cmd_option_t opt_key[] = {
    {.name = "key",
     .description = "The setting, e.g. economy.enabled",
     .type = SOUK_OPT_STRING,
     .required = true,
     .autocomplete = true,
     .max_length = 64},
    {0},
};

static const souk_command_t setup_subs[] = {
    {.name = "server",
     .description = "Set this server up step by step: channels, prefix, market, economy",
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = cmd_setup_server},
    {.name = "user",
     .description = "Your own preferences step by step: alerts, time zone, display",
     .handler = cmd_setup_user},
    {0},
};

static const souk_command_t settings_subs[] = {
    {.name = "view",
     .description = "This server's and your settings, with where each value comes from",
     .options = opt_module,
     .handler = settings_view},
    {.name = "set",
     .description = "Change one setting (server settings need Manage Server)",
     .options = opt_set,
     .handler = settings_set,
     .autocomplete = complete_key},
    {.name = "reset",
     .description = "Put one setting back to its default",
     .options = opt_key,
     .handler = settings_reset,
     .autocomplete = complete_key},
    {0},
};

static const char *const setup_ex[] = {"/setup server", "/setup user", NULL};
static const char *const settings_ex[] = {"/settings view",
                                          "/settings set key:economy.enabled "
                                          "value:off",
                                          "/settings reset key:setup.timezone", NULL};

static const souk_command_t setup_commands[] = {
    {.name = "setup",
     .description = "Step-by-step setup of this server, or of your preferences",
     .category = "Server",
     .usage = setup_ex,
     .flags = SOUK_CMD_EPHEMERAL,
     .subcommands = setup_subs},
    {.name = "settings",
     .description = "See and change settings",
     .category = "Server",
     .usage = settings_ex,
     .flags = SOUK_CMD_EPHEMERAL,
     .subcommands = settings_subs},
    {0},
};

static const souk_cmd_component_t setup_components[] = {
    {SETUP_PREFIX, setup_press},
    {0},
};

static const char *const compact_choices[] = {"normal", "compact", NULL};

/* Preferences of a user that any module may read. */
static const souk_setting_t setup_settings[] = {
    {.key = "setup.dm_alerts",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_BOOL,
     .def = "true",
     .label = "Alerts in direct messages",
     .description = "Modules may send you your alerts (snipes, signals) in direct messages.",
     .step = "alerts"},
    {.key = "setup.timezone",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_TIMEZONE,
     .def = "UTC",
     .label = "Time zone",
     .description = "Times are shown to you in this zone.",
     .step = "time_zone"},
    {.key = "setup.display",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_ENUM,
     .def = "normal",
     .choices = compact_choices,
     .label = "Replies",
     .description = "Normal replies, or compact ones with fewer details.",
     .step = "display"},
    {0},
};

static int setup_init(const souk_module_ctx_t *ctx) {
  g_store = ctx->store;
  return 0;
}

static void setup_shutdown(const souk_module_ctx_t *ctx) { g_store = NULL; }

const souk_module_t souk_setup_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "setup",
    .conf = setup_conf_keys,
    .conf_data = &setup_conf,
    .commands = setup_commands,
    .components = setup_components,
    .settings = setup_settings,
    .tasks = setup_tasks,
    .init = setup_init,
    .shutdown = setup_shutdown,
};
