/* A harness for module unit tests: start real modules through the module
 * registry, with a throwaway SQLite store and their config from YAML text,
 * then run commands, press buttons and dispatch events as a Discord or
 * console surface would, and read back what the module answered.
 *
 *   modtest_t t;
 *   modtest_start(&t, (const souk_module_t *[]){&souk_ping_module, NULL}, NULL);
 *   modtest_cmd(&t, "/ping", &MODTEST_MEMBER);
 *   assert_non_null(strstr(t.reply.text.data, "pong"));
 *   modtest_stop(&t);
 *
 * Header-only: include it after cmocka.h.  Everything runs on the test's
 * loop; a command's answer is waited for (at most MODTEST_WAIT_MS). */
#ifndef SOUK_TEST_MODTEST_H
#define SOUK_TEST_MODTEST_H

#include "app/app.h"
#include "app/modreg.h"
#include "core/cmdrun.h"
#include "core/config.h"
#include "core/core.h"
#include "ops/health.h"
#include "ops/recovery.h"
#include "ops/settings.h"
#include "ops/task.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/err.h"
#include "souk/loop.h"
#include "souk/module.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODTEST_WAIT_MS 10000
#define MODTEST_OWNER   UINT64_C(100000000000000001)
#define MODTEST_GUILD   UINT64_C(200000000000000002)

/** Who runs a command: a user, a guild (0: a DM) and permission bits. */
typedef struct modtest_who {
  uint64_t user, guild, perms;
  const char *name;
} modtest_who_t;

/** The bot's owner in the test guild, with every permission. */
static const modtest_who_t MODTEST_OWNER_WHO
    __attribute__((unused)) = {MODTEST_OWNER, MODTEST_GUILD, ~UINT64_C(0), "owner"};
/** An ordinary member of the test guild, with no permissions. */
static const modtest_who_t MODTEST_MEMBER
    __attribute__((unused)) = {UINT64_C(300000000000000003), MODTEST_GUILD, 0, "member"};

/** What the last invocation answered. */
typedef struct modtest_reply {
  int done;              /* deliveries (exactly 1 for a finished invocation) */
  souk__out_kind_t kind; /* REPLY, UPDATE, MODAL or CHOICES */
  bool ephemeral;
  /** The content, then each embed's title, description, "name: value" of
   * each field and footer, a line each; a modal's title and field labels;
   * choices as "name=value" lines. */
  souk_buf_t text;
  char custom_ids[10][SOUK_CMD_CUSTOM_ID_MAX + 1]; /* buttons, selects, a modal */
  size_t ncustom;
  size_t nchoices;
} modtest_reply_t;

typedef struct modtest {
  char dir[64];
  souk_store_t *store;
  souk_conf_section_t secs[16];
  size_t nsecs;
  modtest_reply_t reply;
  unsigned seq; /* idempotency keys */
} modtest_t;

static void mt_line(souk_buf_t *b, const char *a, const char *sep, const char *c) {
  if (!a && !c) return;
  souk_buf_printf(b, "%s%s%s\n", a ? a : "", a && c ? sep : "", c ? c : "");
}

static void mt_id(modtest_reply_t *r, const char *id) {
  if (id && r->ncustom < 10)
    snprintf(r->custom_ids[r->ncustom++], SOUK_CMD_CUSTOM_ID_MAX + 1, "%s", id);
}

static void mt_deliver(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred) {
  modtest_reply_t *r = ctx->surface_data;
  r->done++;
  r->kind = out->kind;
  souk_buf_reset(&r->text);
  r->ncustom = r->nchoices = 0;
  if (out->kind == SOUK__OUT_CHOICES) {
    for (size_t i = 0; i < out->nchoices; i++)
      souk_buf_printf(&r->text, "%s=%s\n", out->choices[i].name, out->choices[i].value);
    r->nchoices = out->nchoices;
    return;
  }
  if (out->kind == SOUK__OUT_MODAL) {
    mt_line(&r->text, out->modal->title, "", NULL);
    mt_id(r, out->modal->custom_id);
    for (size_t i = 0; i < out->modal->nfields; i++)
      mt_line(&r->text, out->modal->fields[i].label, "", NULL);
    return;
  }
  const souk_msg_t *m = out->msg;
  r->ephemeral = m->ephemeral;
  mt_line(&r->text, m->content, "", NULL);
  for (size_t e = 0; e < m->nembeds; e++) {
    const souk_embed_t *em = &m->embeds[e];
    mt_line(&r->text, em->title, "", NULL);
    mt_line(&r->text, em->description, "", NULL);
    for (size_t f = 0; f < em->nfields; f++)
      mt_line(&r->text, em->fields[f].name, ": ", em->fields[f].value);
    mt_line(&r->text, em->footer, "", NULL);
  }
  for (size_t c = 0; c < m->ncomponents; c++)
    mt_id(r, m->components[c].custom_id);
}

static const souk__surface_t mt_surface = {"test", NULL, mt_deliver, NULL};

/* Wait for the invocation to be answered. */
static void mt_wait(modtest_t *t) {
  uint64_t until = souk_now_ms() + MODTEST_WAIT_MS;
  while (!t->reply.done && souk_now_ms() < until)
    uv_run(souk_loop(), UV_RUN_ONCE);
}

static souk__cmdrun_init_t mt_init(modtest_t *t, souk_cmd_kind_t kind, const modtest_who_t *w,
                                   char *idem, size_t cap) {
  snprintf(idem, cap, "test:%u", ++t->seq);
  souk_buf_reset(&t->reply.text);
  t->reply.done = 0;
  return (souk__cmdrun_init_t){.surface = &mt_surface,
                               .surface_data = &t->reply,
                               .kind = kind,
                               .user_id = w->user,
                               .user_name = w->name ? w->name : "tester",
                               .guild_id = w->guild,
                               .channel_id = UINT64_C(400000000000000004),
                               .permissions = w->perms,
                               .idem_key = idem};
}

/** Run a command line ("/buy symbol:AAPL shares:3", as in the console) as
 * w, and wait for its answer; returns the answer's text.  With the same
 * idem (not NULL), the invocation counts as a redelivery of that one. */
static inline const char *modtest_cmd_idem(modtest_t *t, const char *line, const modtest_who_t *w,
                                           const char *idem) {
  char key[32];
  souk__cmdrun_init_t in = mt_init(t, SOUK_CMD_KIND_COMMAND, w, key, sizeof key);
  if (idem) in.idem_key = idem;
  souk_cmd_args_t args;
  int rc = souk__cmd_parse_text(line, strlen(line), &args);
  souk__cmd_invoke(&in, &args, rc);
  souk_cmd_args_free(&args);
  mt_wait(t);
  souk_buf_putc(&t->reply.text, 0);
  t->reply.text.len--;
  return t->reply.text.data;
}

static inline const char *modtest_cmd(modtest_t *t, const char *line, const modtest_who_t *w) {
  return modtest_cmd_idem(t, line, w, NULL);
}

/** Ask for autocomplete choices with an interaction's data as Discord
 * sends it ({"name":"buy","options":[{"name":"symbol","type":3,"value":
 * "AA","focused":true}]}); returns the choices, "name=value" a line. */
static inline const char *modtest_complete(modtest_t *t, const char *data_json,
                                           const modtest_who_t *w) {
  char key[32];
  souk__cmdrun_init_t in = mt_init(t, SOUK_CMD_KIND_AUTOCOMPLETE, w, key, sizeof key);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, data_json, strlen(data_json)), 0);
  souk_cmd_args_t args;
  int rc = souk__cmd_parse_interaction(&j, 0, true, &args);
  souk__cmd_invoke(&in, &args, rc);
  souk_cmd_args_free(&args);
  souk_json_free(&j);
  mt_wait(t);
  souk_buf_putc(&t->reply.text, 0);
  t->reply.text.len--;
  return t->reply.text.data;
}

/** Pick value from the select menu with this custom_id (a button press
 * when value is NULL) as w; returns the answer's text. */
static inline const char *modtest_pick(modtest_t *t, const char *custom_id, const char *value,
                                       const modtest_who_t *w) {
  char key[32];
  souk__cmdrun_init_t in = mt_init(t, SOUK_CMD_KIND_COMPONENT, w, key, sizeof key);
  in.custom_id = custom_id;
  const char *values[1] = {value};
  if (value) {
    in.values = values;
    in.nvalues = 1;
  }
  souk__cmd_invoke_component(&in);
  mt_wait(t);
  souk_buf_putc(&t->reply.text, 0);
  t->reply.text.len--;
  return t->reply.text.data;
}

/** Press the button with this custom_id as w. */
static inline const char *modtest_press(modtest_t *t, const char *custom_id,
                                        const modtest_who_t *w) {
  return modtest_pick(t, custom_id, NULL, w);
}

/** Dispatch a gateway event (d is its JSON) to the modules. */
static inline void modtest_event(const char *name, const char *d_json) {
  char *text = NULL;
  size_t n = strlen(d_json) + 32;
  text = souk_malloc(n);
  snprintf(text, n, "{\"op\":0,\"d\":%s}", d_json);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, strlen(text)), 0);
  souk_event_t ev = {.name = name, .json = &j, .d = souk_json_get(&j, 0, "d")};
  souk__dispatch(&ev);
  souk_json_free(&j);
  souk_free(text);
}

/** Run the loop until the worker pool's jobs are done (store writes an
 * event or a task started). */
static inline void modtest_drain(void) {
  uint64_t until = souk_now_ms() + MODTEST_WAIT_MS;
  while (souk_work_pending() && souk_now_ms() < until)
    uv_run(souk_loop(), UV_RUN_ONCE);
}

/** Start mods (a NULL-terminated list that must stay valid until
 * modtest_stop: a static array) with a throwaway SQLite store in a temp directory (and
 * cache, which may be NULL, as the process's cache) and their config from
 * yaml (NULL: every default).  The command registry, the
 * scheduler (not ticking: tests run tasks through souk_task_restart and
 * souk__sched_tick), the error recorder and the health registry are set
 * up as souk sets them up.  MODTEST_OWNER owns the bot. */
static inline void modtest_start_with(modtest_t *t, const souk_module_t *const *mods,
                                      const char *yaml, struct souk_cache *cache) {
  memset(t, 0, sizeof *t);
  souk_buf_init(&t->reply.text);
  snprintf(t->dir, sizeof t->dir, "/tmp/souk-modtest-XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  souk_store_conf_t sc;
  souk_store_conf_defaults(&sc);
  sc.backup_before_migrate = false;
  assert_int_equal(souk_store_open(&sc, t->dir, &t->store), 0);
  souk__recovery_init(NULL);
  souk__health_init(NULL);
  souk__sched_init(NULL);
  assert_int_equal(souk__modreg_init(mods), 0);
  t->secs[t->nsecs++] =
      (souk_conf_section_t){"commands", souk__cmd_conf_keys, &souk__cmd_conf, NULL};
  souk__modreg_sections(t->secs, &t->nsecs);
  const char *y = yaml ? yaml : "{}\n";
  assert_int_equal(souk__config_load_mem("test.yaml", y, strlen(y), t->secs, t->nsecs, NULL), 0);
  static const uint64_t owner = MODTEST_OWNER;
  souk__cmd_set_app_owners(&owner, 1);
  /* The settings registry: the modules' tables and commands.prefix. */
  assert_int_equal(souk__app_settings_register(), 0);
  assert_int_equal(souk__settings_start(t->store, t->secs, t->nsecs), 0);
  assert_int_equal(souk__modreg_commands(), 0);
  souk__modreg_services_t svc = {.store = t->store, .cache = cache};
  assert_int_equal(souk__modreg_start(&svc), 0);
}

static inline void modtest_start(modtest_t *t, const souk_module_t *const *mods, const char *yaml) {
  modtest_start_with(t, mods, yaml, NULL);
}

/** Stop the modules, forget the registry and remove the store. */
static inline void modtest_stop(modtest_t *t) {
  souk__modreg_stop();
  souk__settings_stop();
  souk__settings_clear();
  souk__cmd_release_loop();
  souk__cmd_clear();
  souk__cmd_prefixes_clear();
  modtest_drain();
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  souk__config_free(t->secs, t->nsecs);
  souk__sched_shutdown();
  souk__health_shutdown();
  souk__recovery_shutdown();
  souk_store_close(t->store);
  souk_store_registry_clear();
  souk_buf_free(&t->reply.text);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  assert_int_equal(system(cmd), 0);
}

#endif
