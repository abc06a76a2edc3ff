/* The versioned Terms of Service: the "tos" gate every coin command goes
 * through, its Accept / Decline prompt, /tos, /tosinfo and publishing a
 * new version.
 *
 * The gate passes at once for a user this process saw accept the current
 * version; otherwise it reads the user's acceptance from the store.  A
 * user who has not accepted the current version gets the terms with
 * Accept / Decline buttons, and the command they ran is kept (as text,
 * souk_cmd_args_line) in the store's kv table under a random token for
 * economy.prompt_ttl, with the idempotency key of the invocation it came
 * from: Accept records the acceptance (and, the first time ever, pays the
 * welcome bonus in the same transaction) and then runs the kept command in
 * the press (souk_cmd_redispatch) under that key, through the checks and
 * this gate again, so its coins move once whichever Accept runs it, and a
 * redelivery of the original command finds the change already made.  A
 * restart between the prompt and the click loses nothing: the token and
 * the command are in the store. */
#include "economy_int.h"
#include "souk/alloc.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PENDING_NS   "economy.pending"
#define KEY_MAX      96   /* longest idempotency key kept with a command */
#define TOS_SHOW_MAX 3500 /* bytes of the terms shown in the prompt's embed */
#define TOS_FILE_MAX 8000

static const char BUILTIN_TOS[] =
    "1. Coins are virtual. They have no value outside this bot and cannot be bought, sold or "
    "exchanged for money, goods or services.\n"
    "2. Your coins and your acceptance of these terms belong to your account in every server "
    "that uses this bot. A server's admins may turn the economy off in their server.\n"
    "3. Do not use other accounts, scripts or bugs to get coins. The bot's owners may take coins "
    "that were obtained that way, and every change of a balance is recorded with its reason.\n"
    "4. Games of chance use virtual coins only. Play for fun.\n"
    "5. These terms may change. You will be asked to accept a new version before your next coin "
    "command.";

/* ---- acceptances this process has seen ------------------------------------- */

typedef struct seen {
  uint64_t user; /* 0: empty slot */
  int64_t version;
} seen_t;

static seen_t *g_seen;
static size_t g_seen_cap, g_seen_used;
#define SEEN_MAX 65536 /* then start over: the store remains the truth */

static size_t seen_slot(uint64_t user) {
  uint64_t h = user * 0x9E3779B97F4A7C15u;
  return (size_t)(h ^ (h >> 31)) & (g_seen_cap - 1);
}

int64_t economy_tos_known(uint64_t user_id) {
  if (!g_seen_cap || !user_id) return 0;
  for (size_t i = seen_slot(user_id);; i = (i + 1) & (g_seen_cap - 1)) {
    if (!g_seen[i].user) return 0;
    if (g_seen[i].user == user_id) return g_seen[i].version;
  }
}

void economy_tos_remember(uint64_t user_id, int64_t version) {
  if (!user_id) return;
  if ((g_seen_used + 1) * 2 > g_seen_cap) {
    seen_t *old = g_seen;
    size_t oldcap = g_seen_cap;
    bool restart = g_seen_used >= SEEN_MAX;
    g_seen_cap = oldcap && !restart ? oldcap * 2 : 1024;
    g_seen = souk_calloc(g_seen_cap, sizeof *g_seen);
    g_seen_used = 0;
    for (size_t i = 0; !restart && i < oldcap; i++)
      if (old[i].user) economy_tos_remember(old[i].user, old[i].version);
    souk_free(old);
  }
  for (size_t i = seen_slot(user_id);; i = (i + 1) & (g_seen_cap - 1)) {
    if (g_seen[i].user == user_id) {
      if (version > g_seen[i].version) g_seen[i].version = version;
      return;
    }
    if (!g_seen[i].user) {
      g_seen[i] = (seen_t){user_id, version};
      g_seen_used++;
      return;
    }
  }
}

void economy_tos_forget_all(void) {
  souk_free(g_seen);
  g_seen = NULL;
  g_seen_cap = g_seen_used = 0;
}

/* ---- reading a file of terms -------------------------------------------------- */

/* Read path into out (replacing it): 0, SOUK_ENOTFOUND, SOUK_ETOOBIG or
 * SOUK_EINVAL (empty).  Blocking: a pool thread or init. */
static int read_terms(const char *path, souk_buf_t *out) {
  souk_buf_reset(out);
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? SOUK_ENOTFOUND : SOUK_EIO;
  char chunk[4096];
  size_t n;
  int rc = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (out->len + n > TOS_FILE_MAX) {
      rc = SOUK_ETOOBIG;
      break;
    }
    souk_buf_append(out, chunk, n);
  }
  fclose(f);
  while (rc == 0 && out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == ' '))
    out->data[--out->len] = '\0';
  if (rc == 0 && out->len == 0) rc = SOUK_EINVAL;
  return rc;
}

/* ---- start --------------------------------------------------------------------- */

typedef struct start_job {
  souk_buf_t body;
  int64_t version;
} start_job_t;

static int start_tx(souk_db_t *db, void *ud) {
  start_job_t *j = ud;
  int rc = economy_tos_current(db, &j->version, NULL, NULL);
  if (rc != SOUK_ENOTFOUND) return rc;
  return economy_tos_publish(db, j->body.data, 0, (int64_t)souk_unix_ms(), &j->version);
}

int economy_tos_start(souk_store_t *st) {
  start_job_t j = {0};
  souk_buf_init(&j.body);
  int rc = 0;
  if (economy_conf.tos_file) {
    rc = read_terms(economy_conf.tos_file, &j.body);
    if (rc) {
      SOUK_ERROR("economy", "economy.tos_file %s cannot be used: %s", economy_conf.tos_file,
                 rc == SOUK_EINVAL ? "it is empty" : souk_strerror(rc));
      souk_buf_free(&j.body);
      return SOUK_ECONFIG;
    }
  } else {
    souk_buf_puts(&j.body, BUILTIN_TOS);
  }
  /* Once, at start, before any command is served: a blocking call. */
  rc = souk_store_tx(st, start_tx, &j);
  /* Processes of one bot starting together on one store: another one
   * published the first version between our read and our insert.  Read
   * it now. */
  if (rc == SOUK_EEXIST) rc = souk_store_tx(st, start_tx, &j);
  souk_buf_free(&j.body);
  if (rc) {
    SOUK_ERROR("economy", "cannot read the Terms of Service from the store: %s", souk_strerror(rc));
    return rc;
  }
  economy_g.tos_version = j.version;
  return 0;
}

/* ---- the gate ------------------------------------------------------------------------ */

typedef struct gate_job {
  souk_cmd_ctx_t *ctx;
  int64_t user;
  int64_t accepted, current;
  souk_buf_t body;
  souk_buf_t line; /* the command to run after acceptance */
  char token[24];
  char key[KEY_MAX + 1]; /* its invocation's idempotency key */
} gate_job_t;

static void gate_free(gate_job_t *j) {
  souk_buf_free(&j->body);
  souk_buf_free(&j->line);
  souk_free(j);
}

/* Read the user's acceptance and the current terms. */
static int status_tx(souk_db_t *db, void *ud) {
  gate_job_t *j = ud;
  int rc = economy_tos_status(db, j->user, &j->accepted, NULL);
  if (rc == 0) rc = economy_tos_current(db, &j->current, &j->body, NULL);
  return rc;
}

/* The prompt: the terms in an embed, Accept and Decline.  token "-" when
 * no command waits. */
static void prompt(souk_cmd_ctx_t *ctx, int64_t version, const souk_buf_t *body, const char *token,
                   const char *waiting, bool update) {
  char accept[SOUK_CMD_CUSTOM_ID_MAX + 1], decline[SOUK_CMD_CUSTOM_ID_MAX + 1], st[80];
  snprintf(st, sizeof st, "a:%" PRId64 ":%" PRIu64 ":%s", version, ctx->user_id, token);
  souk_cmd_custom_id(accept, sizeof accept, ECONOMY_TOS_PREFIX, st);
  snprintf(st, sizeof st, "d:%" PRIu64 ":%s", ctx->user_id, token);
  souk_cmd_custom_id(decline, sizeof decline, ECONOMY_TOS_PREFIX, st);
  souk_component_t c[2] = {
      {.custom_id = accept, .label = "Accept", .style = SOUK_BUTTON_SUCCESS},
      {.custom_id = decline, .label = "Decline", .style = SOUK_BUTTON_DANGER},
  };
  char title[64], bonus[ECONOMY_FMT_MAX];
  snprintf(title, sizeof title, "Terms of Service, version %" PRId64, version);
  souk_buf_t text, foot;
  souk_buf_init(&text);
  souk_buf_init(&foot);
  size_t n = body->len;
  if (n > TOS_SHOW_MAX) {
    n = TOS_SHOW_MAX;
    while (n > 0 && ((unsigned char)body->data[n] & 0xC0) == 0x80)
      n--;
  }
  souk_buf_append(&text, body->data, n);
  if (n < body->len) souk_buf_puts(&text, "\n\xE2\x80\xA6 (the rest: /tos)");
  if (waiting)
    souk_buf_printf(&foot, "Accept to continue with /%s.", waiting);
  else
    souk_buf_puts(&foot, "Coin commands need your acceptance.");
  if (economy_conf.welcome_bonus > 0)
    souk_buf_printf(&foot, " Your first acceptance gives you %s coins.",
                    economy_fmt(economy_conf.welcome_bonus, bonus));
  souk_embed_t e = {
      .title = title, .description = text.data, .color = ECONOMY_COLOR, .footer = foot.data};
  souk_msg_t m = {.content = waiting ? "Please read and accept the Terms of Service first." : NULL,
                  .embeds = &e,
                  .nembeds = 1,
                  .components = c,
                  .ncomponents = 2,
                  .ephemeral = true};
  if (update)
    souk_cmd_update(ctx, &m);
  else
    souk_cmd_reply(ctx, &m);
  souk_buf_free(&text);
  souk_buf_free(&foot);
}

/* The kept command's row: "<user>\t<idempotency key>\n<line>" ("<user>\n
 * <line>" from before keys were kept reads with an empty key). */
static int pending_put_tx(souk_db_t *db, void *ud) {
  gate_job_t *j = ud;
  souk_buf_t v;
  souk_buf_init(&v);
  souk_buf_printf(&v, "%" PRId64 "\t%s\n", j->user, j->key);
  souk_buf_append(&v, j->line.data, j->line.len);
  int rc = souk_db_kv_put(db, PENDING_NS, j->token, v.data, v.len);
  souk_buf_free(&v);
  return rc;
}

static void pending_put_done(void *ud, int status) {
  gate_job_t *j = ud;
  if (status) {
    economy_store_error(j->ctx, status);
  } else {
    /* Shown as the command's path, without its arguments. */
    const char *path = j->ctx->args ? j->ctx->args->path : NULL;
    prompt(j->ctx, j->current, &j->body, j->token, path, false);
  }
  gate_free(j);
}

/* Whether args can be kept as text and run later as they are now.  The
 * text keeps a user option's id but not that the user is a bot, so a
 * handler that refuses bots (they hold no coins) could no longer tell:
 * such a command is not kept, and the user runs it again after
 * accepting. */
static bool keepable(const souk_cmd_args_t *args) {
  if (!args) return false;
  for (size_t i = 0; i < args->n; i++)
    if (args->v[i].type == SOUK_OPT_USER && args->v[i].bot) return false;
  return true;
}

static void gate_status_done(void *ud, int status) {
  gate_job_t *j = ud;
  if (status == SOUK_ENOTFOUND) {
    souk_cmd_replyf(j->ctx, "The economy has no Terms of Service yet, so it is closed.");
    gate_free(j);
    return;
  }
  if (status) {
    economy_store_error(j->ctx, status);
    gate_free(j);
    return;
  }
  if (j->current > economy_g.tos_version) economy_g.tos_version = j->current;
  if (j->accepted) economy_tos_remember(j->ctx->user_id, j->accepted);
  if (j->accepted >= j->current) {
    souk_cmd_ctx_t *ctx = j->ctx;
    gate_free(j);
    souk_cmd_gate_pass(ctx);
    return;
  }
  /* Keep the command to run it after acceptance. */
  snprintf(j->token, sizeof j->token, "%016" PRIx64, economy_rng(NULL) ^ souk_rand64());
  const char *key = j->ctx->idem_key ? j->ctx->idem_key : "";
  if (strlen(key) <= KEY_MAX && !strpbrk(key, "\t\n")) snprintf(j->key, sizeof j->key, "%s", key);
  souk_buf_reset(&j->line);
  if (!keepable(j->ctx->args) || souk_cmd_args_line(j->ctx->args, &j->line) != 0) {
    prompt(j->ctx, j->current, &j->body, "-", NULL, false);
    gate_free(j);
    return;
  }
  if (economy_run(j->ctx, pending_put_tx, pending_put_done, j, true)) gate_free(j);
}

void economy_tos_gate(souk_cmd_ctx_t *ctx, void *ud) {
  (void)ud;
  if (!economy_enabled(ctx->guild_id)) {
    souk_msg_t m = {.content = "The economy is turned off in this server.", .ephemeral = true};
    souk_cmd_reply(ctx, &m);
    return;
  }
  int64_t cur = economy_g.tos_version;
  if (cur > 0 && economy_tos_known(ctx->user_id) >= cur) {
    souk_cmd_gate_pass(ctx);
    return;
  }
  gate_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->user = (int64_t)ctx->user_id;
  souk_buf_init(&j->body);
  souk_buf_init(&j->line);
  if (economy_run(ctx, status_tx, gate_status_done, j, false)) gate_free(j);
}

/* ---- Accept and Decline --------------------------------------------------------------- */

typedef struct accept_job {
  souk_cmd_ctx_t *ctx;
  bool accept;
  int64_t user, version, current;
  char token[24];
  souk_buf_t line;       /* the waiting command, "" when none or expired */
  char key[KEY_MAX + 1]; /* the idempotency key it was kept with, "" when none */
  bool expired;
  bool paid;
  economy_change_t bonus;
} accept_job_t;

static void accept_free(accept_job_t *j) {
  souk_buf_free(&j->line);
  souk_free(j);
}

/* Take the waiting command out of the store (once: a second click finds
 * nothing), then record the acceptance. */
static int accept_tx(souk_db_t *db, void *ud) {
  accept_job_t *j = ud;
  souk_buf_reset(&j->line);
  j->key[0] = '\0';
  j->expired = j->paid = false;
  int64_t now = (int64_t)souk_unix_ms();
  if (strcmp(j->token, "-") != 0) {
    souk_buf_t v;
    souk_buf_init(&v);
    int64_t at = 0;
    int rc = souk_db_kv_get(db, PENDING_NS, j->token, &v, &at);
    if (rc == 0) {
      const char *nl = memchr(v.data, '\n', v.len);
      long long owner = 0;
      /* Only the user it was kept for may run it. */
      if (nl && sscanf(v.data, "%lld", &owner) == 1 && owner == j->user) {
        const char *tab = memchr(v.data, '\t', (size_t)(nl - v.data));
        if (now - at <= economy_conf.prompt_ttl_ms) {
          souk_buf_append(&j->line, nl + 1, v.len - (size_t)(nl + 1 - v.data));
          if (tab && (size_t)(nl - tab - 1) <= KEY_MAX)
            snprintf(j->key, sizeof j->key, "%.*s", (int)(nl - tab - 1), tab + 1);
        } else {
          j->expired = true;
        }
        rc = souk_db_kv_del(db, PENDING_NS, j->token);
        if (rc == SOUK_ENOTFOUND) {
          /* Another click read the row too and deleted it first (on
           * PostgreSQL our delete waited for its commit): that click
           * runs the command, so this one must not run it again under
           * its own idempotency key. */
          souk_buf_reset(&j->line);
          j->key[0] = '\0';
          j->expired = false;
        }
      }
    }
    souk_buf_free(&v);
    if (rc != 0 && rc != SOUK_ENOTFOUND) return rc;
  }
  if (!j->accept) return 0;
  int rc = economy_tos_accept(db, j->user, j->ctx->user_name, j->version,
                              economy_conf.welcome_bonus, now, &j->paid, &j->bonus);
  if (rc == 0) rc = economy_tos_current(db, &j->current, NULL, NULL);
  return rc;
}

static void accept_done(void *ud, int status) {
  accept_job_t *j = ud;
  souk_cmd_ctx_t *ctx = j->ctx;
  char n[ECONOMY_FMT_MAX];
  if (status == SOUK_ENOTFOUND) {
    souk_cmd_replyf(ctx, "Those terms no longer exist. Run /tos to read the current ones.");
    accept_free(j);
    return;
  }
  if (status) {
    economy_store_error(ctx, status);
    accept_free(j);
    return;
  }
  if (!j->accept) {
    souk_msg_t m = {.content = "You declined the Terms of Service. Coin commands stay unavailable "
                               "until you accept them with /tos.",
                    .ephemeral = true};
    souk_cmd_update(ctx, &m);
    accept_free(j);
    return;
  }
  economy_tos_remember(ctx->user_id, j->version);
  if (j->current > economy_g.tos_version) economy_g.tos_version = j->current;
  SOUK_INFO("economy", "user %" PRId64 " accepted the Terms of Service v%" PRId64 "%s", j->user,
            j->version, j->paid ? " (welcome bonus paid)" : "");
  char bonus[160] = "";
  if (j->paid)
    snprintf(bonus, sizeof bonus, " Welcome: you received **%s** coins.",
             economy_fmt(j->bonus.amount, n));
  if (j->line.len) {
    /* The waiting command answers the press; the bonus gets its own note. */
    if (j->paid) {
      char note[256];
      snprintf(note, sizeof note, "%s accepted the Terms of Service.%s", ctx->user_name, bonus);
      souk_msg_t m = {.content = note};
      int rc = souk_discord_send(ctx->channel_id, &m, NULL, NULL);
      if (rc) SOUK_DEBUG("economy", "welcome note not sent: %s", souk_strerror(rc));
    }
    souk_buf_t line = j->line;
    char key[KEY_MAX + 1];
    snprintf(key, sizeof key, "%s", j->key);
    souk_buf_init(&j->line);
    accept_free(j);
    souk_cmd_redispatch(ctx, line.data, key[0] ? key : NULL);
    souk_buf_free(&line);
    return;
  }
  char text[512];
  if (j->version < j->current)
    snprintf(text, sizeof text,
             "You accepted version %" PRId64 ", but version %" PRId64
             " is now current: run /tos to read it.%s",
             j->version, j->current, bonus);
  else
    snprintf(text, sizeof text, "You accepted the Terms of Service (version %" PRId64 ").%s%s",
             j->version, bonus,
             j->expired ? " The command you ran before has expired: please run it again." : "");
  souk_msg_t m = {.content = text, .ephemeral = true};
  souk_cmd_update(ctx, &m);
  accept_free(j);
}

/* custom_id state: "a:<version>:<user>:<token>" or "d:<user>:<token>". */
void economy_press_tos(souk_cmd_ctx_t *ctx) {
  const char *s = ctx->state ? ctx->state : "";
  long long version = 0;
  unsigned long long user = 0;
  char token[24] = "";
  int used = 0;
  bool accept = s[0] == 'a';
  bool ok = accept ? sscanf(s, "a:%lld:%llu:%20[-0-9a-f]%n", &version, &user, token, &used) == 3
                   : sscanf(s, "d:%llu:%20[-0-9a-f]%n", &user, token, &used) == 2;
  if (!ok || s[used] || (accept && version < 1)) {
    souk_cmd_replyf(ctx, "This button is no longer valid; run /tos again.");
    return;
  }
  if (user != ctx->user_id) {
    souk_msg_t m = {.content = "These terms were shown to someone else: run /tos to read and "
                               "accept them yourself.",
                    .ephemeral = true};
    souk_cmd_reply(ctx, &m);
    return;
  }
  accept_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->accept = accept;
  j->user = (int64_t)user;
  j->version = version;
  snprintf(j->token, sizeof j->token, "%s", token);
  souk_buf_init(&j->line);
  if (economy_run(ctx, accept_tx, accept_done, j, true)) accept_free(j);
}

/* ---- /tos and /tosinfo ------------------------------------------------------------------ */

static void utc_text(int64_t ms, char *out, size_t cap) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

static void tos_done(void *ud, int status) {
  gate_job_t *j = ud;
  if (status == SOUK_ENOTFOUND) {
    souk_cmd_replyf(j->ctx, "No Terms of Service have been published yet.");
  } else if (status) {
    economy_store_error(j->ctx, status);
  } else if (j->accepted >= j->current) {
    economy_tos_remember(j->ctx->user_id, j->accepted);
    char title[64];
    snprintf(title, sizeof title, "Terms of Service, version %" PRId64, j->current);
    souk_embed_t e = {.title = title,
                      .description = j->body.data,
                      .color = ECONOMY_COLOR,
                      .footer = "You have accepted this version."};
    souk_msg_t m = {.embeds = &e, .nembeds = 1, .ephemeral = true};
    souk_cmd_reply(j->ctx, &m);
  } else {
    prompt(j->ctx, j->current, &j->body, "-", NULL, false);
  }
  gate_free(j);
}

void economy_cmd_tos(souk_cmd_ctx_t *ctx) {
  gate_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->user = (int64_t)ctx->user_id;
  souk_buf_init(&j->body);
  souk_buf_init(&j->line);
  if (economy_run(ctx, status_tx, tos_done, j, false)) gate_free(j);
}

typedef struct info_job {
  souk_cmd_ctx_t *ctx;
  int64_t accepted, at, current;
} info_job_t;

static int info_tx(souk_db_t *db, void *ud) {
  info_job_t *j = ud;
  int rc = economy_tos_status(db, (int64_t)j->ctx->user_id, &j->accepted, &j->at);
  if (rc == 0) rc = economy_tos_current(db, &j->current, NULL, NULL);
  if (rc == SOUK_ENOTFOUND) rc = 0, j->current = 0;
  return rc;
}

static void info_done(void *ud, int status) {
  info_job_t *j = ud;
  char when[48];
  if (status) {
    economy_store_error(j->ctx, status);
  } else if (!j->current) {
    souk_cmd_replyf(j->ctx, "No Terms of Service have been published yet.");
  } else if (!j->accepted) {
    souk_cmd_replyf(j->ctx,
                    "You have not accepted the Terms of Service yet (the current version is "
                    "%" PRId64 "). Read and accept them with /tos.",
                    j->current);
  } else {
    utc_text(j->at, when, sizeof when);
    if (j->accepted >= j->current)
      souk_cmd_replyf(j->ctx,
                      "You accepted the Terms of Service version %" PRId64
                      " on %s. That is the current version.",
                      j->accepted, when);
    else
      souk_cmd_replyf(j->ctx,
                      "You accepted version %" PRId64 " on %s. Version %" PRId64
                      " is current now: you will be asked to accept it with your next coin "
                      "command, or read it now with /tos.",
                      j->accepted, when, j->current);
  }
  souk_free(j);
}

void economy_cmd_tosinfo(souk_cmd_ctx_t *ctx) {
  info_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  if (economy_run(ctx, info_tx, info_done, j, false)) souk_free(j);
}

/* ---- publishing (owners) ------------------------------------------------------------------- */

typedef struct publish_job {
  souk_cmd_ctx_t *ctx;
  char *file;      /* read on the pool, or NULL */
  souk_buf_t body; /* the text (from the file, an option or the form) */
  int64_t version;
  int file_rc;
} publish_job_t;

static void publish_free(publish_job_t *j) {
  souk_free(j->file);
  souk_buf_free(&j->body);
  souk_free(j);
}

static int publish_tx(souk_db_t *db, void *ud) {
  publish_job_t *j = ud;
  if (j->file) {
    j->file_rc = read_terms(j->file, &j->body);
    if (j->file_rc) return 0; /* reported by done; nothing written */
  }
  return economy_tos_publish(db, j->body.data, (int64_t)j->ctx->user_id, (int64_t)souk_unix_ms(),
                             &j->version);
}

static void publish_done(void *ud, int status) {
  publish_job_t *j = ud;
  if (j->file_rc) {
    souk_cmd_replyf(j->ctx, "The file %s cannot be used: %s. Nothing was published.", j->file,
                    j->file_rc == SOUK_EINVAL    ? "it is empty"
                    : j->file_rc == SOUK_ETOOBIG ? "it is longer than 8000 bytes"
                                                 : souk_strerror(j->file_rc));
  } else if (status) {
    economy_store_error(j->ctx, status);
  } else {
    economy_g.tos_version = j->version;
    economy_tos_forget_all();
    SOUK_INFO("economy",
              "owner %" PRIu64 " published the Terms of Service v%" PRId64 " (%zu bytes)",
              j->ctx->user_id, j->version, j->body.len);
    souk_cmd_replyf(j->ctx,
                    "Published the Terms of Service version %" PRId64
                    " (%zu characters). Everyone will be asked to accept it with their next "
                    "coin command.",
                    j->version, j->body.len);
  }
  publish_free(j);
}

static void publish(souk_cmd_ctx_t *ctx, const char *text, const char *file) {
  publish_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  souk_buf_init(&j->body);
  if (file)
    j->file = souk_strdup(file);
  else
    souk_buf_puts(&j->body, text);
  if (economy_run(ctx, publish_tx, publish_done, j, true)) publish_free(j);
}

void economy_cmd_tos_publish(souk_cmd_ctx_t *ctx) {
  const char *text = souk_cmd_arg_str(ctx->args, "text", NULL);
  const char *file = souk_cmd_arg_str(ctx->args, "file", NULL);
  if (text && file) {
    souk_cmd_replyf(ctx, "Give the text or a file, not both.");
    return;
  }
  if (text || file) {
    publish(ctx, text, file);
    return;
  }
  static const souk_modal_field_t fields[] = {
      {.custom_id = "text",
       .label = "The new Terms of Service",
       .paragraph = true,
       .required = true,
       .min_length = 1,
       .max_length = 4000},
  };
  souk_modal_t m = {.custom_id = ECONOMY_TOS_MODAL,
                    .title = "Publish new Terms of Service",
                    .fields = fields,
                    .nfields = 1};
  souk_cmd_modal(ctx, &m);
}

void economy_modal_tos(souk_cmd_ctx_t *ctx) {
  /* A form is only ever opened for an owner, but its submission is a new
   * interaction: check again. */
  const char *text = souk_cmd_field_value(ctx, "text");
  static const souk_command_t probe = {
      .name = "publish-tos", .description = "owners", .flags = SOUK_CMD_OWNER_ONLY};
  if (!souk_cmd_may_run(ctx, &probe)) {
    souk_cmd_replyf(ctx, "Only the bot's owners can publish Terms of Service.");
    return;
  }
  if (!text || !text[0]) {
    souk_cmd_replyf(ctx, "The terms are empty; nothing was published.");
    return;
  }
  publish(ctx, text, NULL);
}
