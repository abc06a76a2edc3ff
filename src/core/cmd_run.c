/* The command runner (see cmdrun.h): invocations, deadlines, the reply
 * functions handlers call, and per-command figures. */
#include "core/cmdrun.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/module.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* ---- config ------------------------------------------------------------- */

souk__cmd_conf_t souk__cmd_conf;

static const char *const reg_choices[] = {"global", "guild", "off", NULL};

#define K(field) offsetof(souk__cmd_conf_t, field)
const souk_conf_key_t souk__cmd_conf_keys[] = {
    {"prefix", SOUK_CONF_STRING, K(prefix), "!", 0, 8, NULL, SOUK_CONF_RUNTIME,
     "default prefix of message commands (a guild may set its own with /prefix)"},
    {"mention_prefix", SOUK_CONF_BOOL, K(mention_prefix), "true", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "a message starting with the bot's mention runs a command too"},
    {"register", SOUK_CONF_ENUM, K(reg), "global", 0, 0, reg_choices, 0,
     "where slash commands are registered: global, guild (commands.dev_guild) or off"},
    {"dev_guild", SOUK_CONF_SNOWFLAKE, K(dev_guild), NULL, 0, 0, NULL, 0,
     "development guild for register: guild (its commands update instantly)"},
    {"defer_after", SOUK_CONF_DURATION, K(defer_after_ms), "2s", 100, 2400, NULL,
     SOUK_CONF_RUNTIME, "a command still working after this is deferred (Discord allows 3 s)"},
    {"timeout", SOUK_CONF_DURATION, K(timeout_ms), "14m", 1000, 14 * 60 * 1000, NULL,
     SOUK_CONF_RUNTIME, "a deferred command still working after this is answered with an apology"},
    {"owners", SOUK_CONF_SNOWFLAKE_LIST, K(owners), NULL, 0, 0, NULL, SOUK_CONF_RUNTIME,
     "user ids of the bot's owners (owner-only commands), besides the application's owners"},
    {0},
};
#undef K

/* An autocomplete answer cannot be deferred; this leaves room for the
 * network inside Discord's 3 s. */
#define AUTOCOMPLETE_DEADLINE_MS 2500

/* ---- state ---------------------------------------------------------------- */

typedef struct run {
  souk_cmd_ctx_t ctx; /* first: handlers get &run->ctx */
  const souk__surface_t *surf;
  souk_cmd_args_t args;
  bool has_args;
  souk_cmd_handler_cb fn;
  size_t stat; /* index into g.stats, or SIZE_MAX */
  uint64_t t0;
  uv_timer_t timer;
  bool timer_on;
  bool deferred;   /* a deferral went out */
  bool waited;     /* past the deferral deadline */
  bool answered;   /* the surface delivered an answer */
  bool finished;   /* the handler called its finishing function */
  bool gated;      /* waiting for its gate to pass it */
  bool defer_ephemeral;
  /* Owned copies of the strings ctx points to. */
  char *user_name, *idem_key, *custom_id;
  char **values;
  souk_cmd_field_t *fields;
  struct run *prev, *next;
} run_t;

static struct {
  souk__cmd_stat_t *stats;
  size_t nstats;
  uint64_t served;
  uint64_t guilds;
  souk__cmd_observer_cb observer;
  uint64_t *app_owners;
  size_t napp_owners;
  run_t *running;
  size_t nrunning;
  size_t nunanswered;
  void (*idle)(void);
} g;

const double souk__cmd_latency_bounds[8] = {SOUK__CMD_LATENCY_BOUNDS};

/* ---- figures -------------------------------------------------------------- */

static size_t stat_slot(const char *path) {
  for (size_t i = 0; i < g.nstats; i++)
    if (strcmp(g.stats[i].path, path) == 0) return i;
  g.stats = souk_reallocarray(g.stats, g.nstats + 1, sizeof *g.stats);
  souk__cmd_stat_t *s = &g.stats[g.nstats];
  memset(s, 0, sizeof *s);
  snprintf(s->path, sizeof s->path, "%s", path);
  return g.nstats++;
}

size_t souk__cmd_stats_n(void) { return g.nstats; }

const souk__cmd_stat_t *souk__cmd_stats_at(size_t i) { return i < g.nstats ? &g.stats[i] : NULL; }

void souk__cmd_set_observer(souk__cmd_observer_cb fn) { g.observer = fn; }

uint64_t souk_cmd_served(void) { return g.served; }

uint64_t souk_cmd_guilds(void) { return g.guilds; }

void souk__cmd_set_guild_count(uint64_t n) { g.guilds = n; }

size_t souk__cmd_running(void) { return g.nrunning; }

size_t souk__cmd_unanswered(void) { return g.nunanswered; }

void souk__cmd_release_loop(void) {
  for (run_t *r = g.running; r; r = r->next)
    if (r->timer_on) uv_unref((uv_handle_t *)&r->timer);
}

void souk__cmd_set_idle_cb(void (*fn)(void)) { g.idle = fn; }

void souk__cmd_set_app_owners(const uint64_t *ids, size_t n) {
  souk_free(g.app_owners);
  g.app_owners = NULL;
  g.napp_owners = 0;
  if (n) {
    g.app_owners = souk_calloc(n, sizeof *ids);
    memcpy(g.app_owners, ids, n * sizeof *ids);
    g.napp_owners = n;
  }
}

void souk__cmd_owners(const uint64_t **ids, size_t *n) {
  /* commands.owners and the owners learnt from Discord (or the console's
   * user) together. */
  static uint64_t merged[64];
  size_t k = 0;
  for (size_t i = 0; i < souk__cmd_conf.owners.n && k < 64; i++)
    merged[k++] = souk__cmd_conf.owners.ids[i];
  for (size_t i = 0; i < g.napp_owners && k < 64; i++) merged[k++] = g.app_owners[i];
  *ids = merged;
  *n = k;
}

static void record(run_t *r, souk__cmd_outcome_t outcome) {
  uint64_t ms = souk_now_ms() - r->t0;
  g.served++;
  if (r->stat != SIZE_MAX) {
    souk__cmd_stat_t *s = &g.stats[r->stat];
    s->calls++;
    switch (outcome) {
    case SOUK__CMD_OK: s->ok++; break;
    case SOUK__CMD_ERROR: s->errors++; break;
    case SOUK__CMD_REFUSED: s->refused++; break;
    case SOUK__CMD_LATE: s->late++; break;
    }
    double secs = (double)ms / 1000.0;
    s->latency_sum_s += secs;
    for (size_t i = 0; i < 8; i++)
      if (secs <= souk__cmd_latency_bounds[i]) s->buckets[i]++;
    if (g.observer) g.observer(s->path, r->ctx.user_id, r->ctx.guild_id, outcome, ms);
  }
  if (ms >= 1000)
    SOUK_INFO("cmd", "slow %s: %s took %" PRIu64 " ms (%s)",
              r->ctx.kind == SOUK_CMD_KIND_COMMAND ? "command" : "handler",
              r->stat != SIZE_MAX ? g.stats[r->stat].path : "?", ms, r->ctx.surface);
}

/* ---- life of a run ---------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? souk_strdup(s) : NULL; }

static run_t *run_new(const souk__cmdrun_init_t *in) {
  run_t *r = souk_calloc(1, sizeof *r);
  r->surf = in->surface;
  r->stat = SIZE_MAX;
  r->t0 = souk_now_ms();
  r->ctx.kind = in->kind;
  r->ctx.user_id = in->user_id;
  r->user_name = souk_strdup(in->user_name && in->user_name[0] ? in->user_name : "someone");
  r->ctx.user_name = r->user_name;
  r->ctx.guild_id = in->guild_id;
  r->ctx.channel_id = in->channel_id;
  r->ctx.permissions = in->permissions;
  r->ctx.shard = in->shard;
  r->ctx.surface = in->surface->name;
  r->idem_key = dup_or_null(in->idem_key ? in->idem_key : "");
  r->ctx.idem_key = r->idem_key;
  r->ctx.message_id = in->message_id;
  r->custom_id = dup_or_null(in->custom_id);
  r->ctx.custom_id = r->custom_id;
  if (in->nvalues) {
    r->values = souk_calloc(in->nvalues, sizeof *r->values);
    for (size_t i = 0; i < in->nvalues; i++) r->values[i] = souk_strdup(in->values[i]);
    r->ctx.values = (const char *const *)r->values;
    r->ctx.nvalues = in->nvalues;
  }
  if (in->nfields) {
    r->fields = souk_calloc(in->nfields, sizeof *r->fields);
    for (size_t i = 0; i < in->nfields; i++) {
      r->fields[i].custom_id = souk_strdup(in->fields[i].custom_id);
      r->fields[i].value = souk_strdup(in->fields[i].value ? in->fields[i].value : "");
    }
    r->ctx.fields = r->fields;
    r->ctx.nfields = in->nfields;
  }
  r->ctx.surface_data = in->surface_data;
  r->next = g.running;
  if (g.running) g.running->prev = r;
  g.running = r;
  g.nrunning++;
  g.nunanswered++;
  return r;
}

static void run_free_cb(uv_handle_t *h) {
  run_t *r = h->data;
  if (r->surf->release) r->surf->release(&r->ctx);
  if (r->has_args) souk_cmd_args_free(&r->args);
  souk_free(r->user_name);
  souk_free(r->idem_key);
  souk_free(r->custom_id);
  for (size_t i = 0; i < r->ctx.nvalues; i++) souk_free(r->values[i]);
  souk_free(r->values);
  for (size_t i = 0; i < r->ctx.nfields; i++) {
    souk_free((char *)r->fields[i].custom_id);
    souk_free((char *)r->fields[i].value);
  }
  souk_free(r->fields);
  souk_free(r);
}

/* Unlink r and free it once its timer handle is closed. */
static void run_free(run_t *r) {
  if (r->prev) r->prev->next = r->next;
  else g.running = r->next;
  if (r->next) r->next->prev = r->prev;
  g.nrunning--;
  if (!r->answered) {
    /* Freed without an answer (never happens: refusals answer too). */
    g.nunanswered--;
    if (g.nunanswered == 0 && g.idle) g.idle();
  }
  if (r->timer_on) {
    r->timer_on = false;
    uv_close((uv_handle_t *)&r->timer, run_free_cb);
  } else {
    r->timer.data = r;
    run_free_cb((uv_handle_t *)&r->timer);
  }
}

static run_t *run_of(souk_cmd_ctx_t *ctx) { return (run_t *)ctx; }

/* Text for a message, with control characters escaped when it has any,
 * the copy kept in keep (freed by the caller); NULL stays NULL. */
static const char *escaped(const char *s, souk_buf_t *keep, size_t *nkeep) {
  if (!s || !souk_text_needs_escape(s, strlen(s))) return s;
  souk_buf_t *b = &keep[(*nkeep)++];
  souk_buf_init(b);
  souk_buf_put_escaped(b, s, strlen(s));
  souk_buf_putc(b, '\0');
  return b->data;
}

static bool msg_needs_escape(const souk_msg_t *m) {
  if (m->content && souk_text_needs_escape(m->content, strlen(m->content))) return true;
  for (size_t i = 0; i < m->nembeds; i++) {
    const souk_embed_t *e = &m->embeds[i];
    const char *t[] = {e->title, e->description, e->footer};
    for (size_t k = 0; k < 3; k++)
      if (t[k] && souk_text_needs_escape(t[k], strlen(t[k]))) return true;
    for (size_t f = 0; f < e->nfields; f++) {
      const char *n = e->fields[f].name, *v = e->fields[f].value;
      if ((n && souk_text_needs_escape(n, strlen(n))) || (v && souk_text_needs_escape(v, strlen(v))))
        return true;
    }
  }
  return false;
}

/* Every reply, whoever wrote it, leaves with control characters escaped:
 * a reply that quotes what a user typed ("Unknown command `...`", a
 * symbol, a name) must show an escape sequence, not obey it in a terminal
 * or a Discord ANSI block.  Only messages that need it are copied. */
static void deliver_escaped(run_t *r, const souk__out_t *out) {
  const souk_msg_t *m = out->msg;
  if (!m || (out->kind != SOUK__OUT_REPLY && out->kind != SOUK__OUT_UPDATE) ||
      !msg_needs_escape(m)) {
    r->surf->deliver(&r->ctx, out, r->deferred);
    return;
  }
  size_t nfields = 0;
  for (size_t i = 0; i < m->nembeds; i++)
    nfields += m->embeds[i].nfields;
  size_t cap = 1 + m->nembeds * 3 + nfields * 2, nkeep = 0;
  souk_buf_t *keep = souk_calloc(cap, sizeof *keep);
  souk_embed_t *embeds = m->nembeds ? souk_calloc(m->nembeds, sizeof *embeds) : NULL;
  souk_embed_field_t *fields = nfields ? souk_calloc(nfields, sizeof *fields) : NULL;
  souk_msg_t copy = *m;
  copy.content = escaped(m->content, keep, &nkeep);
  for (size_t i = 0, f0 = 0; i < m->nembeds; i++) {
    embeds[i] = m->embeds[i];
    embeds[i].title = escaped(m->embeds[i].title, keep, &nkeep);
    embeds[i].description = escaped(m->embeds[i].description, keep, &nkeep);
    embeds[i].footer = escaped(m->embeds[i].footer, keep, &nkeep);
    for (size_t f = 0; f < m->embeds[i].nfields; f++) {
      fields[f0 + f] = m->embeds[i].fields[f];
      fields[f0 + f].name = escaped(m->embeds[i].fields[f].name, keep, &nkeep);
      fields[f0 + f].value = escaped(m->embeds[i].fields[f].value, keep, &nkeep);
    }
    embeds[i].fields = m->embeds[i].nfields ? &fields[f0] : NULL;
    f0 += m->embeds[i].nfields;
  }
  copy.embeds = embeds;
  souk__out_t o = *out;
  o.msg = &copy;
  r->surf->deliver(&r->ctx, &o, r->deferred);
  for (size_t i = 0; i < nkeep; i++)
    souk_buf_free(&keep[i]);
  souk_free(keep);
  souk_free(embeds);
  souk_free(fields);
}

static void deliver(run_t *r, const souk__out_t *out, souk__cmd_outcome_t outcome) {
  if (r->answered) return;
  r->answered = true;
  deliver_escaped(r, out);
  record(r, outcome);
  g.nunanswered--;
  if (g.nunanswered == 0 && g.idle) g.idle();
}

static void deliver_text(run_t *r, const char *text, bool ephemeral, souk__cmd_outcome_t oc) {
  souk_msg_t m = {.content = text, .ephemeral = ephemeral};
  souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = &m};
  deliver(r, &out, oc);
}

/* The handler's finishing call: deliver (unless the core already answered
 * for it) and release the invocation. */
static int finish(souk_cmd_ctx_t *ctx, const souk__out_t *out, souk__cmd_outcome_t oc) {
  SOUK_ASSERT(ctx);
  run_t *r = run_of(ctx);
  r->finished = true;
  r->gated = false;
  /* An answer of the wrong kind would be refused by Discord: autocomplete
   * takes only choices, and nothing else takes choices. */
  souk__out_t fixed;
  bool ac = ctx->kind == SOUK_CMD_KIND_AUTOCOMPLETE;
  souk_msg_t err = {.content = "Something went wrong.", .ephemeral = true};
  if (ac != (out->kind == SOUK__OUT_CHOICES)) {
    SOUK_WARN("cmd", "%s answered %s with the wrong kind of answer",
              r->stat != SIZE_MAX ? g.stats[r->stat].path : "a handler",
              ac ? "an autocomplete request" : "a command");
    fixed = ac ? (souk__out_t){.kind = SOUK__OUT_CHOICES}
               : (souk__out_t){.kind = SOUK__OUT_REPLY, .msg = &err};
    out = &fixed;
    oc = SOUK__CMD_ERROR;
  }
  if (r->answered) {
    SOUK_DEBUG("cmd", "%s finished after the core answered for it",
               r->stat != SIZE_MAX ? g.stats[r->stat].path : "handler");
  } else {
    deliver(r, out, oc);
  }
  run_free(r);
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  run_t *r = t->data;
  if (r->answered) return;
  if (r->ctx.kind == SOUK_CMD_KIND_AUTOCOMPLETE) {
    SOUK_WARN("cmd", "autocomplete for %s missed its deadline; answering with no choices",
              r->stat != SIZE_MAX ? g.stats[r->stat].path : "?");
    souk__out_t out = {.kind = SOUK__OUT_CHOICES};
    deliver(r, &out, SOUK__CMD_LATE);
    return;
  }
  if (!r->waited) {
    /* First deadline: defer where the surface can (Discord's "thinking"),
     * then wait for the give-up deadline. */
    r->waited = true;
    if (r->surf->defer && r->surf->defer(&r->ctx, r->defer_ephemeral) == 0) r->deferred = true;
    uv_timer_start(&r->timer, timer_cb, (uint64_t)souk__cmd_conf.timeout_ms, 0);
    return;
  }
  SOUK_WARN("cmd", "%s did not finish within %" PRId64 " ms; answering for it",
            r->stat != SIZE_MAX ? g.stats[r->stat].path : "handler", souk__cmd_conf.timeout_ms);
  deliver_text(r, "Sorry, that took too long and was given up. Please try again later.", true,
               SOUK__CMD_LATE);
}

static void start_timer(run_t *r) {
  uv_timer_init(souk_loop(), &r->timer);
  r->timer.data = r;
  r->timer_on = true;
  uint64_t ms = r->ctx.kind == SOUK_CMD_KIND_AUTOCOMPLETE ? AUTOCOMPLETE_DEADLINE_MS
                                                          : (uint64_t)souk__cmd_conf.defer_after_ms;
  if (ms == 0) ms = 2000;
  uv_timer_start(&r->timer, timer_cb, ms, 0);
}

/* Refuse before any handler runs: an ephemeral reply, then release. */
static void refuse(run_t *r, const char *why) {
  r->finished = true;
  if (r->ctx.kind == SOUK_CMD_KIND_AUTOCOMPLETE) {
    souk__out_t out = {.kind = SOUK__OUT_CHOICES};
    deliver(r, &out, SOUK__CMD_REFUSED);
  } else {
    deliver_text(r, why && why[0] ? why : "That cannot be done.", true, SOUK__CMD_REFUSED);
  }
  run_free(r);
}

/* Guild-only, owner-only and permissions along the command's chain. */
static bool chain_may_run(const souk_cmd_ctx_t *ctx, const souk_cmd_args_t *a) {
  const struct souk_command *chain[3] = {a->top, a->group, a->cmd};
  for (int i = 0; i < 3; i++)
    if (chain[i] && !souk_cmd_may_run(ctx, chain[i])) return false;
  return true;
}

static void run_handler(run_t *r) {
  if (!r->timer_on) start_timer(r);
  r->fn(&r->ctx);
}

/* The gate of a command: the most specific one along its chain. */
static const char *chain_gate(const souk_cmd_args_t *a) {
  if (a->cmd && a->cmd->gate) return a->cmd->gate;
  if (a->group && a->group->gate) return a->group->gate;
  return a->top ? a->top->gate : NULL;
}

/* Run a checked command's handler, through its gate when it names one.
 * The deadline timer runs while the gate decides, so a slow gate (a store
 * read) is deferred like a slow handler. */
static void run_command(run_t *r) {
  const char *gate = chain_gate(&r->args);
  if (!gate) {
    run_handler(r);
    return;
  }
  void *ud = NULL;
  souk_cmd_gate_cb fn = souk__cmd_gate_find(gate, &ud);
  if (!fn) {
    SOUK_WARN("cmd", "%s needs gate `%s`, which no module registered; refused", r->args.path, gate);
    refuse(r, "This command is not available right now.");
    return;
  }
  if (!r->timer_on) start_timer(r);
  r->gated = true;
  fn(&r->ctx, ud);
}

void souk_cmd_gate_pass(souk_cmd_ctx_t *ctx) {
  SOUK_ASSERT(ctx);
  run_t *r = run_of(ctx);
  SOUK_ASSERT(r->gated && !r->finished);
  r->gated = false;
  r->fn(&r->ctx);
}

/* The core's checks for a parsed command; false when it was refused (r
 * is then finished). */
static bool check_command(run_t *r) {
  const uint64_t *owners;
  size_t nowners;
  souk__cmd_owners(&owners, &nowners);
  souk__cmd_caller_t who = {.user_id = r->ctx.user_id,
                           .guild_id = r->ctx.guild_id,
                           .permissions = r->ctx.permissions,
                           .owners = owners,
                           .nowners = nowners};
  if (souk__cmd_check(&r->args, &who) != 0) {
    refuse(r, r->args.error);
    return false;
  }
  uint32_t flags =
      r->args.top->flags | (r->args.group ? r->args.group->flags : 0) | r->args.cmd->flags;
  r->defer_ephemeral = (flags & SOUK_CMD_EPHEMERAL) != 0;
  r->fn = r->args.cmd->handler;
  return true;
}

void souk_cmd_redispatch(souk_cmd_ctx_t *ctx, const char *line, const char *idem_key) {
  SOUK_ASSERT(ctx && line);
  run_t *r = run_of(ctx);
  SOUK_ASSERT(!r->finished && !r->gated);
  if (idem_key) {
    /* The kept command's cause is the invocation it was kept from, not
     * this press. */
    souk_free(r->idem_key);
    r->idem_key = souk_strdup(idem_key);
    r->ctx.idem_key = r->idem_key;
  }
  souk_cmd_args_t a;
  int rc = souk__cmd_parse_text(line, strlen(line), &a);
  if (r->has_args) souk_cmd_args_free(&r->args);
  r->args = a;
  r->has_args = true;
  r->ctx.args = &r->args;
  r->ctx.kind = SOUK_CMD_KIND_COMMAND;
  /* From here on it is that command: its figures count it. */
  if (r->args.cmd) r->stat = stat_slot(r->args.path);
  if (rc) {
    refuse(r, r->args.error);
    return;
  }
  r->ctx.module = r->args.module;
  if (check_command(r)) run_command(r);
}

void souk__cmd_invoke(const souk__cmdrun_init_t *in, souk_cmd_args_t *args, int parse_rc) {
  run_t *r = run_new(in);
  r->args = *args;
  r->has_args = true;
  memset(args, 0, sizeof *args);
  r->ctx.args = &r->args;
  if (r->args.cmd) r->stat = stat_slot(r->args.path);
  if (parse_rc) {
    refuse(r, r->args.error);
    return;
  }
  r->ctx.module = r->args.module;
  if (r->ctx.kind == SOUK_CMD_KIND_AUTOCOMPLETE) {
    const struct souk_command *c = r->args.cmd;
    souk_cmd_autocomplete_cb ac = c->autocomplete;
    if (!ac && r->args.top) ac = r->args.top->autocomplete;
    /* Suggestions can reveal data: whoever may not run the command gets
     * none (the checks without the cooldown, which only running starts). */
    if (!ac || !chain_may_run(&r->ctx, &r->args)) {
      refuse(r, NULL);
      return;
    }
    r->fn = ac;
    run_handler(r);
    return;
  }
  if (check_command(r)) run_command(r);
}

void souk__cmd_invoke_component(const souk__cmdrun_init_t *in) {
  run_t *r = run_new(in);
  souk__cmd_route_t route;
  int rc = r->custom_id ? souk__cmd_route_custom_id(r->custom_id, &route) : SOUK_EINVAL;
  if (rc) {
    char id[48];
    snprintf(id, sizeof id, "%.40s", r->custom_id ? r->custom_id : "");
    SOUK_DEBUG("cmd", "no handler for custom_id \"%s\"", id);
    refuse(r, r->ctx.kind == SOUK_CMD_KIND_MODAL
                  ? "This form is no longer handled. Please run the command again."
                  : "This button has expired or is no longer handled. Please run the command "
                    "again.");
    return;
  }
  char path[64];
  snprintf(path, sizeof path, "component %.50s", route.component->prefix);
  r->stat = stat_slot(path);
  r->ctx.module = route.module;
  r->ctx.state = route.state;
  r->fn = route.component->fn;
  run_handler(r);
}

/* ---- finishing functions (souk/cmd.h) -------------------------------------- */

static bool msg_empty(const souk_msg_t *m) {
  return !m || ((!m->content || !m->content[0]) && m->nembeds == 0 && m->ncomponents == 0);
}

int souk_cmd_reply(souk_cmd_ctx_t *ctx, const souk_msg_t *msg) {
  if (msg_empty(msg)) {
    SOUK_WARN("cmd", "a handler replied with an empty message");
    souk_msg_t m = {.content = "Something went wrong.", .ephemeral = true};
    souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = &m};
    finish(ctx, &out, SOUK__CMD_ERROR);
    return SOUK_EINVAL;
  }
  souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = msg};
  return finish(ctx, &out, SOUK__CMD_OK);
}

static int vtext(souk_cmd_ctx_t *ctx, bool error, const char *fmt, va_list ap) {
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  char *text = small;
  if (n >= (int)sizeof small) {
    text = souk_malloc((size_t)n + 1);
    vsnprintf(text, (size_t)n + 1, fmt, ap2);
  }
  va_end(ap2);
  if (n < 0) snprintf(small, sizeof small, "Something went wrong.");
  souk_msg_t m = {.content = text, .ephemeral = error};
  souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = &m};
  int rc = finish(ctx, &out, error ? SOUK__CMD_ERROR : SOUK__CMD_OK);
  if (text != small) souk_free(text);
  return rc;
}

int souk_cmd_replyf(souk_cmd_ctx_t *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vtext(ctx, false, fmt, ap);
  va_end(ap);
  return rc;
}

int souk_cmd_errorf(souk_cmd_ctx_t *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vtext(ctx, true, fmt, ap);
  va_end(ap);
  return rc;
}

int souk_cmd_update(souk_cmd_ctx_t *ctx, const souk_msg_t *msg) {
  if (msg_empty(msg)) return souk_cmd_reply(ctx, msg);
  /* A form opened from a button may replace that button's message too. */
  bool on_message =
      ctx->kind == SOUK_CMD_KIND_COMPONENT || (ctx->kind == SOUK_CMD_KIND_MODAL && ctx->message_id);
  souk__out_t out = {.kind = on_message ? SOUK__OUT_UPDATE : SOUK__OUT_REPLY, .msg = msg};
  return finish(ctx, &out, SOUK__CMD_OK);
}

int souk_cmd_ack(souk_cmd_ctx_t *ctx) {
  bool component = ctx->kind == SOUK_CMD_KIND_COMPONENT ||
                   (ctx->kind == SOUK_CMD_KIND_MODAL && ctx->message_id);
  if (!component) {
    SOUK_WARN("cmd", "a handler acknowledged something that is not a component press");
    souk_msg_t m = {.content = "Something went wrong.", .ephemeral = true};
    souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = &m};
    finish(ctx, &out, SOUK__CMD_ERROR);
    return SOUK_EINVAL;
  }
  souk__out_t out = {.kind = SOUK__OUT_ACK};
  return finish(ctx, &out, SOUK__CMD_OK);
}

int souk_cmd_modal(souk_cmd_ctx_t *ctx, const souk_modal_t *modal) {
  run_t *r = run_of(ctx);
  if (!modal || !modal->custom_id || modal->nfields == 0 || modal->nfields > 5 ||
      ctx->kind == SOUK_CMD_KIND_MODAL || ctx->kind == SOUK_CMD_KIND_AUTOCOMPLETE) {
    SOUK_WARN("cmd", "a handler opened an invalid modal");
    souk_msg_t m = {.content = "Something went wrong.", .ephemeral = true};
    souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = &m};
    finish(ctx, &out, SOUK__CMD_ERROR);
    return SOUK_EINVAL;
  }
  if (r->deferred && r->surf->defer) {
    /* Discord cannot show a modal once the interaction was deferred. */
    souk_msg_t m = {.content = "The form could not be opened in time. Please try again.",
                    .ephemeral = true};
    souk__out_t out = {.kind = SOUK__OUT_REPLY, .msg = &m};
    finish(ctx, &out, SOUK__CMD_LATE);
    return SOUK_ETIMEDOUT;
  }
  souk__out_t out = {.kind = SOUK__OUT_MODAL, .modal = modal};
  return finish(ctx, &out, SOUK__CMD_OK);
}

int souk_cmd_choices(souk_cmd_ctx_t *ctx, const souk_cmd_choice_t *choices, size_t n) {
  const souk_cmd_arg_t *f = ctx->args ? souk_cmd_focused(ctx->args) : NULL;
  souk__out_t out = {.kind = SOUK__OUT_CHOICES,
                     .choices = choices,
                     .nchoices = n > SOUK_CMD_CHOICES_MAX ? SOUK_CMD_CHOICES_MAX : n,
                     .choice_type = f ? f->type : SOUK_OPT_STRING};
  return finish(ctx, &out, SOUK__CMD_OK);
}

const char *souk_cmd_field_value(const souk_cmd_ctx_t *ctx, const char *custom_id) {
  for (size_t i = 0; ctx && custom_id && i < ctx->nfields; i++)
    if (strcmp(ctx->fields[i].custom_id, custom_id) == 0) return ctx->fields[i].value;
  return NULL;
}

bool souk_cmd_may_run(const souk_cmd_ctx_t *ctx, const struct souk_command *cmd) {
  if (!ctx || !cmd) return false;
  if ((cmd->flags & SOUK_CMD_GUILD_ONLY) && ctx->guild_id == 0) return false;
  if (cmd->flags & SOUK_CMD_OWNER_ONLY) {
    const uint64_t *owners;
    size_t n;
    souk__cmd_owners(&owners, &n);
    bool owner = false;
    for (size_t i = 0; i < n && !owner; i++) owner = owners[i] == ctx->user_id;
    if (!owner) return false;
  }
  if (ctx->permissions & SOUK_PERM_ADMINISTRATOR) return true;
  return (cmd->permissions & ~ctx->permissions) == 0;
}

size_t souk_cmd_count(void) { return souk__cmd_count(); }

const struct souk_command *souk_cmd_at(size_t i, const char **module) {
  return souk__cmd_at(i, module);
}

/* ---- per-guild prefixes ------------------------------------------------------ */

typedef struct gprefix {
  uint64_t guild;
  char prefix[SOUK_CMD_PREFIX_MAX + 1];
} gprefix_t;

/* Sorted by guild, for a binary search per message. */
static gprefix_t *g_prefixes;
static size_t g_nprefixes;

static size_t prefix_pos(uint64_t guild, bool *found) {
  size_t lo = 0, hi = g_nprefixes;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (g_prefixes[mid].guild < guild) lo = mid + 1;
    else hi = mid;
  }
  *found = lo < g_nprefixes && g_prefixes[lo].guild == guild;
  return lo;
}

const char *souk_cmd_prefix(uint64_t guild_id) {
  bool found;
  size_t i = prefix_pos(guild_id, &found);
  if (found) return g_prefixes[i].prefix;
  return souk__cmd_conf.prefix ? souk__cmd_conf.prefix : "!";
}

int souk_cmd_set_prefix(uint64_t guild_id, const char *prefix) {
  size_t n = prefix ? strlen(prefix) : 0;
  if (n > SOUK_CMD_PREFIX_MAX || (prefix && strpbrk(prefix, " \t\r\n"))) return SOUK_EINVAL;
  bool found;
  size_t i = prefix_pos(guild_id, &found);
  if (n == 0) {
    if (found) {
      memmove(&g_prefixes[i], &g_prefixes[i + 1], (g_nprefixes - i - 1) * sizeof *g_prefixes);
      g_nprefixes--;
    }
    return 0;
  }
  if (!found) {
    g_prefixes = souk_reallocarray(g_prefixes, g_nprefixes + 1, sizeof *g_prefixes);
    memmove(&g_prefixes[i + 1], &g_prefixes[i], (g_nprefixes - i) * sizeof *g_prefixes);
    g_nprefixes++;
    g_prefixes[i].guild = guild_id;
  }
  memcpy(g_prefixes[i].prefix, prefix, n + 1);
  return 0;
}

void souk__cmd_prefixes_clear(void) {
  souk_free(g_prefixes);
  g_prefixes = NULL;
  g_nprefixes = 0;
}
