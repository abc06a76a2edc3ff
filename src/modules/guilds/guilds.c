/* The guilds module: a guild's data is purged a configurable time after
 * the bot leaves it (DESIGN: data about people can be removed).
 *
 * GUILD_DELETE without "unavailable" means the bot was removed (with
 * unavailable:true it is only an outage); the time is noted in the store's
 * kv table under namespace "guild_left".  GUILD_CREATE for that guild
 * (the bot came back) clears the note.  A background task purges every
 * guild whose note is older than guilds.purge_after, through the store's
 * registry of tables that hold guild data. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/module.h"
#include "souk/store.h"
#include "souk/task.h"

#define GUILDS_NS "guild_left"

typedef struct guilds_conf {
  int64_t purge_after_ms; /* 0: never */
  int64_t check_every_ms;
} guilds_conf_t;

static guilds_conf_t guilds_conf;

/* The store, from the init context (NULL when the process has none). */
static souk_store_t *guilds_store;

static const souk_conf_key_t guilds_conf_keys[] = {
    {"purge_after", SOUK_CONF_DURATION, offsetof(guilds_conf_t, purge_after_ms), "30d", 0, 0, NULL,
     SOUK_CONF_RUNTIME, "purge a guild's data this long after the bot leaves it (0: never)"},
    {"check_every", SOUK_CONF_DURATION, offsetof(guilds_conf_t, check_every_ms), "1h", 1000,
     86400000, NULL, 0, "how often guilds due for purging are looked for"},
    {0},
};

/* ---- noting joins and leaves ------------------------------------------------ */

typedef struct note {
  char guild[24];
  bool left;
  char when[24];
} note_t;

static int note_fn(souk_db_t *db, void *ud) {
  note_t *n = ud;
  if (!n->left) return souk_db_kv_del(db, GUILDS_NS, n->guild);
  return souk_db_kv_put(db, GUILDS_NS, n->guild, n->when, strlen(n->when));
}

static void note_done(void *ud, int status) {
  note_t *n = ud;
  if (status && status != SOUK_ENOTFOUND)
    SOUK_WARN("guilds", "could not record that guild %s was %s: %s", n->guild,
              n->left ? "left" : "joined", souk_strerror(status));
  souk_free(n);
}

static void note(const souk_event_t *ev, bool left) {
  souk_store_t *st = guilds_store;
  if (!st) return;
  const souk_json_t *j = ev->json;
  note_t *n = souk_calloc(1, sizeof *n);
  n->left = left;
  snprintf(n->when, sizeof n->when, "%" PRIu64, souk_unix_ms());
  if (souk_json_str(j, souk_json_get(j, ev->d, "id"), n->guild, sizeof n->guild) <= 0 ||
      souk_store_tx_async(st, note_fn, note_done, n) != 0)
    souk_free(n);
}

static void on_guild_delete(const souk_event_t *ev) {
  bool unavailable = false;
  souk_json_bool(ev->json, souk_json_get(ev->json, ev->d, "unavailable"), &unavailable);
  if (unavailable) return; /* an outage, not a removal */
  note(ev, true);
}

static void on_guild_create(const souk_event_t *ev) {
  /* Cheap: a delete of a key that is usually absent. */
  note(ev, false);
}

/* ---- the purge task ------------------------------------------------------- */

typedef struct due {
  char id[24];
  bool ok;      /* purged and note removed */
  int64_t rows; /* rows deleted */
} due_t;

typedef struct purge {
  souk_task_ctx_t *ctx;
  int64_t cutoff;
  due_t *due;
  size_t ndue;
} purge_t;

/* Collect the guilds due; runs on the worker pool. */
static int find_due(souk_db_t *db, void *ud) {
  purge_t *p = ud;
  p->ndue = 0; /* a retried transaction starts over */
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "SELECT key, value FROM kv WHERE namespace = ?", &s);
  if (rc) return rc;
  souk_stmt_bind_text(s, 1, GUILDS_NS, SIZE_MAX);
  while ((rc = souk_stmt_step(s)) == 1) {
    size_t kl = 0, vl = 0;
    const char *k = souk_stmt_column_text(s, 0, &kl);
    const char *v = souk_stmt_column_text(s, 1, &vl);
    if (!v) v = souk_stmt_column_blob(s, 1, &vl);
    char buf[24];
    snprintf(buf, sizeof buf, "%.*s", (int)(vl < 23 ? vl : 23), v ? v : "");
    if (!k || kl == 0 || kl >= 24 || strtoll(buf, NULL, 10) > p->cutoff) continue;
    p->due = souk_reallocarray(p->due, p->ndue + 1, sizeof *p->due);
    memset(&p->due[p->ndue], 0, sizeof *p->due);
    snprintf(p->due[p->ndue++].id, 24, "%.*s", (int)kl, k);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

static void purge_free(purge_t *p, int err) {
  souk_task_done(p->ctx, err);
  souk_free(p->due);
  souk_free(p);
}

/* Purge each guild, then forget its note; runs on the worker pool. */
static void purge_work(void *ud) {
  purge_t *p = ud;
  souk_store_t *st = guilds_store;
  for (size_t i = 0; i < p->ndue; i++) {
    due_t *d = &p->due[i];
    int64_t id = strtoll(d->id, NULL, 10);
    if (id <= 0 || souk_store_purge_guild(st, id, &d->rows) != 0) continue;
    note_t n = {.left = false};
    snprintf(n.guild, sizeof n.guild, "%s", d->id);
    d->ok = souk_store_tx(st, note_fn, &n) == 0;
  }
}

static void purge_work_done(void *ud, int status) {
  purge_t *p = ud;
  int err = status;
  for (size_t i = 0; i < p->ndue; i++) {
    if (p->due[i].ok) {
      SOUK_INFO("guilds", "purged data of guild %s: %" PRId64 " row(s) (left more than %lld s ago)",
                p->due[i].id, p->due[i].rows, (long long)(guilds_conf.purge_after_ms / 1000));
    } else {
      SOUK_WARN("guilds", "could not purge guild %s; will try again", p->due[i].id);
      err = SOUK_EIO;
    }
  }
  purge_free(p, err);
}

static void find_done(void *ud, int status) {
  purge_t *p = ud;
  if (status || p->ndue == 0) {
    purge_free(p, status);
    return;
  }
  if (souk_work_submit(purge_work, purge_work_done, p) != 0) purge_free(p, SOUK_EIO);
}

static void purge_task(souk_task_ctx_t *ctx) {
  souk_store_t *st = guilds_store;
  if (!st || guilds_conf.purge_after_ms <= 0) {
    souk_task_done(ctx, 0);
    return;
  }
  purge_t *p = souk_calloc(1, sizeof *p);
  p->ctx = ctx;
  p->cutoff = (int64_t)souk_unix_ms() - guilds_conf.purge_after_ms;
  if (souk_store_read_async(st, find_due, find_done, p) != 0) purge_free(p, SOUK_EIO);
}

/* The purge task's period and jitter come from the config, so it is
 * built at init and added through the scheduler rather than listed in a
 * table. */
static souk_task_t guilds_purge;

static int guilds_init(const souk_module_ctx_t *ctx) {
  guilds_store = ctx->store;
  guilds_purge = (souk_task_t){.name = "guilds.purge",
                               .handler = purge_task,
                               .budget_ms = 60000,
                               .period_ms = (uint64_t)guilds_conf.check_every_ms,
                               .jitter_ms = (uint64_t)guilds_conf.check_every_ms / 10,
                               /* The store is shared: one process purges. */
                               .scope = SOUK_TASK_SCOPE_CLUSTER};
  return ctx->tasks->add(&guilds_purge);
}

static void guilds_shutdown(const souk_module_ctx_t *ctx) {
  ctx->tasks->remove(&guilds_purge);
  guilds_store = NULL;
}

static const souk_event_handler_t guilds_events[] = {
    {"GUILD_DELETE", on_guild_delete},
    {"GUILD_CREATE", on_guild_create},
    {0},
};

const souk_module_t souk_guilds_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "guilds",
    .conf = guilds_conf_keys,
    .conf_data = &guilds_conf,
    .events = guilds_events,
    .init = guilds_init,
    .shutdown = guilds_shutdown,
};
