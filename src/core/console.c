/* `souk console`: the local shell adapter.
 *
 * A line is run as the fixed console user in the console guild, who owns
 * the bot and has every permission there:
 *   /name option:value ...   a slash command, through the same runner
 *   <prefix>name args ...    a prefix command (the default prefix is "!")
 *   3  or  3.2               press button 3, or pick option 2 of select 3,
 *                            of the last message that showed components
 *   anything else            a MESSAGE_CREATE for modules that read messages
 * Replies are printed readably: embeds as framed text, components as
 * numbered choices.  A modal asks for its fields one line at a time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/cmdrun.h"
#include "core/core.h"
#include "core/lineread.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"

/* Fixed ids of the console's user, guild and channel: valid snowflakes
 * that no real Discord object can have (they predate Discord's epoch+1s). */
#define CONSOLE_USER_ID "100000000000000001"
#define CONSOLE_GUILD_ID "100000000000000002"
#define CONSOLE_CHANNEL_ID "100000000000000003"
#define CONSOLE_LINE_MAX 4000

static bool g_active, g_reading, g_mode;
static uint64_t g_msg_id;
static uint64_t g_session; /* Unix ms at start: makes idempotency keys unique per session */
static void (*g_on_eof)(void);

/* Everything the console prints goes through the line reader, which
 * redraws a half-typed line around it. */
static void con_print(const char *text, size_t len) {
  /* The terminal shows control characters from any source as escapes:
   * nothing a user typed, or a provider sent, can drive it. */
  if (!souk_text_needs_escape(text, len)) {
    souk__lineread_print(text, len);
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_put_escaped(&b, text, len);
  souk__lineread_print(b.data, b.len);
  souk_buf_free(&b);
}

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) con_print(tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static int console_reply(const souk_event_t *ev, const char *text, size_t len) {
  con_print(text, len);
  return 0;
}

/* ---- rendering ---------------------------------------------------------- */

/* What the numbers typed after a message refer to. */
typedef struct press {
  char *custom_id;
  bool disabled;
  char **values; /* a select's option values */
  size_t nvalues;
} press_t;

static press_t *g_press;
static size_t g_npress;
static uint64_t g_press_msg; /* the message the pressable choices are on */
static uint64_t g_fake_id;   /* made-up message ids */

/* A modal being filled in, one field per line. */
static struct {
  bool active;
  char *custom_id;
  char **ids, **labels, **values;
  size_t n, at;
} g_modal;

static void press_clear(void) {
  for (size_t i = 0; i < g_npress; i++) {
    souk_free(g_press[i].custom_id);
    for (size_t k = 0; k < g_press[i].nvalues; k++) souk_free(g_press[i].values[k]);
    souk_free(g_press[i].values);
  }
  souk_free(g_press);
  g_press = NULL;
  g_npress = 0;
}

static void modal_clear(void) {
  for (size_t i = 0; i < g_modal.n; i++) {
    souk_free(g_modal.ids[i]);
    souk_free(g_modal.labels[i]);
    souk_free(g_modal.values[i]);
  }
  souk_free(g_modal.ids);
  souk_free(g_modal.labels);
  souk_free(g_modal.values);
  souk_free(g_modal.custom_id);
  memset(&g_modal, 0, sizeof g_modal);
}

void souk__console_set_choices(const souk__console_choice_t *c, size_t n, uint64_t message_id) {
  press_clear();
  g_press_msg = message_id;
  if (!n) return;
  g_press = souk_calloc(n, sizeof *g_press);
  for (size_t i = 0; i < n; i++) {
    press_t *p = &g_press[g_npress++];
    p->custom_id = souk_strdup(c[i].custom_id ? c[i].custom_id : "");
    p->disabled = c[i].disabled;
    if (c[i].nvalues) p->values = souk_calloc(c[i].nvalues, sizeof *p->values);
    for (size_t k = 0; k < c[i].nvalues; k++)
      p->values[p->nvalues++] = souk_strdup(c[i].values[k] ? c[i].values[k] : "");
  }
}

uint64_t souk__console_message_id(void) {
  /* Valid snowflakes no real message has: created in 2015, long before
   * any console ran. */
  if (!g_fake_id) g_fake_id = UINT64_C(300000000000000000);
  return ++g_fake_id;
}

void souk__console_print(const char *text, size_t len) { con_print(text, len); }

void souk__console_put_lines(souk_buf_t *b, const char *lead, const char *text) {
  const char *p = text ? text : "";
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n) souk_buf_printf(b, "%s%.*s\n", lead, (int)n, p);
    p += n + (nl ? 1 : 0);
  }
}

static void render_msg(souk_buf_t *b, const souk_msg_t *m, uint64_t message_id) {
  if (m->content && m->content[0]) {
    souk_buf_puts(b, m->content);
    souk_buf_putc(b, '\n');
  }
  for (size_t i = 0; i < m->nembeds; i++) {
    const souk_embed_t *e = &m->embeds[i];
    souk_buf_printf(b, "+-- %s\n", e->title && e->title[0] ? e->title : "");
    souk__console_put_lines(b, "| ", e->description);
    for (size_t k = 0; k < e->nfields; k++) {
      const char *v = e->fields[k].value ? e->fields[k].value : "";
      if (!strchr(v, '\n')) {
        souk_buf_printf(b, "| %s: %s\n", e->fields[k].name ? e->fields[k].name : "", v);
      } else {
        souk_buf_printf(b, "| %s:\n", e->fields[k].name ? e->fields[k].name : "");
        souk__console_put_lines(b, "|   ", v);
      }
    }
    if (e->footer && e->footer[0]) souk_buf_printf(b, "+-- %s\n", e->footer);
    else souk_buf_puts(b, "+--\n");
  }
  if (m->ncomponents) {
    souk__console_choice_t *ch = souk_calloc(m->ncomponents, sizeof *ch);
    const char **vals = NULL;
    size_t nvals = 0;
    for (size_t i = 0; i < m->ncomponents; i++) nvals += m->components[i].noptions;
    if (nvals) vals = souk_calloc(nvals, sizeof *vals);
    nvals = 0;
    for (size_t i = 0; i < m->ncomponents; i++) {
      const souk_component_t *c = &m->components[i];
      size_t no = i + 1;
      ch[i].custom_id = c->custom_id;
      ch[i].disabled = c->disabled;
      if (c->options) {
        souk_buf_printf(b, "%s[%zu] %s:", i ? "\n" : "", no,
                        c->label && c->label[0] ? c->label : "choose");
        ch[i].values = vals + nvals;
        ch[i].nvalues = c->noptions;
        for (size_t k = 0; k < c->noptions; k++) {
          vals[nvals++] = c->options[k].value;
          souk_buf_printf(b, " %zu.%zu %s", no, k + 1,
                          c->options[k].label ? c->options[k].label : "");
        }
        souk_buf_putc(b, '\n');
      } else {
        souk_buf_printf(b, "%s[%zu] %s%s", i && !c->new_row ? "  " : (i ? "\n" : ""), no,
                        c->label ? c->label : "", c->disabled ? " (disabled)" : "");
        if (i + 1 == m->ncomponents) souk_buf_putc(b, '\n');
      }
    }
    souk_buf_puts(b, "(type a number to press it)\n");
    souk__console_set_choices(ch, m->ncomponents, message_id);
    souk_free(vals);
    souk_free(ch);
  }
}

/* ---- the console surface -------------------------------------------------- */

/* Not a deferral in Discord's sense (a form can still be shown after it),
 * so it reports none. */
static int con_defer(souk_cmd_ctx_t *ctx, bool ephemeral) {
  outf("... working");
  return SOUK_ENOTSUP;
}

static void con_deliver(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred) {
  souk_buf_t b;
  souk_buf_init(&b);
  switch (out->kind) {
  case SOUK__OUT_UPDATE:
    souk_buf_puts(&b, "(message updated)\n");
    render_msg(&b, out->msg, ctx->message_id ? ctx->message_id : souk__console_message_id());
    break;
  case SOUK__OUT_REPLY:
    render_msg(&b, out->msg, souk__console_message_id());
    break;
  case SOUK__OUT_ACK:
    /* A click acknowledged: the message changes only when it is edited. */
    break;
  case SOUK__OUT_CHOICES:
    souk_buf_puts(&b, "suggestions:");
    for (size_t i = 0; i < out->nchoices; i++)
      souk_buf_printf(&b, " %s", out->choices[i].value);
    souk_buf_putc(&b, '\n');
    break;
  case SOUK__OUT_MODAL: {
    const souk_modal_t *m = out->modal;
    modal_clear();
    g_modal.active = true;
    g_modal.custom_id = souk_strdup(m->custom_id);
    g_modal.n = m->nfields;
    g_modal.ids = souk_calloc(m->nfields, sizeof(char *));
    g_modal.labels = souk_calloc(m->nfields, sizeof(char *));
    g_modal.values = souk_calloc(m->nfields, sizeof(char *));
    for (size_t i = 0; i < m->nfields; i++) {
      g_modal.ids[i] = souk_strdup(m->fields[i].custom_id);
      g_modal.labels[i] = souk_strdup(m->fields[i].label ? m->fields[i].label : "value");
    }
    souk_buf_printf(&b, "== %s == (one line per field; an empty line leaves it empty)\n%s:",
                    m->title ? m->title : "form", g_modal.labels[0]);
    break;
  }
  }
  if (b.len) con_print(b.data, b.len);
  souk_buf_free(&b);
}

static const souk__surface_t con_surface = {"console", con_defer, con_deliver, NULL};

static void con_init(souk__cmdrun_init_t *in, char *idem, size_t cap) {
  /* Unique across sessions on the same store: line numbers restart with
   * every process, so the key carries the session's start time too. */
  snprintf(idem, cap, "console:%llu:%llu", (unsigned long long)g_session,
           (unsigned long long)g_msg_id);
  memset(in, 0, sizeof *in);
  in->surface = &con_surface;
  in->user_id = strtoull(CONSOLE_USER_ID, NULL, 10);
  in->user_name = "console";
  in->guild_id = strtoull(CONSOLE_GUILD_ID, NULL, 10);
  in->channel_id = strtoull(CONSOLE_CHANNEL_ID, NULL, 10);
  in->permissions = ~UINT64_C(0);
  in->idem_key = idem;
}

static void modal_line(const char *line, size_t n) {
  g_modal.values[g_modal.at] = souk_malloc(n + 1);
  memcpy(g_modal.values[g_modal.at], line, n);
  g_modal.values[g_modal.at][n] = '\0';
  if (++g_modal.at < g_modal.n) {
    outf("%s:", g_modal.labels[g_modal.at]);
    return;
  }
  souk_cmd_field_t fields[5];
  for (size_t i = 0; i < g_modal.n && i < 5; i++)
    fields[i] = (souk_cmd_field_t){g_modal.ids[i], g_modal.values[i]};
  souk__cmdrun_init_t in;
  char idem[48];
  g_msg_id++;
  con_init(&in, idem, sizeof idem);
  in.kind = SOUK_CMD_KIND_MODAL;
  in.custom_id = g_modal.custom_id;
  in.fields = fields;
  in.nfields = g_modal.n < 5 ? g_modal.n : 5;
  g_modal.active = false;
  souk__cmd_invoke_component(&in);
  modal_clear();
}

/* "3" or "3.2": press a button or pick a select option. */
static bool press_line(const char *line, size_t n) {
  char tmp[16];
  if (n == 0 || n >= sizeof tmp) return false;
  memcpy(tmp, line, n);
  tmp[n] = '\0';
  char *end;
  unsigned long a = strtoul(tmp, &end, 10), k = 0;
  if (end == tmp) return false;
  if (*end == '.') {
    char *e2;
    k = strtoul(end + 1, &e2, 10);
    if (e2 == end + 1 || *e2) return false;
  } else if (*end) {
    return false;
  }
  if (a == 0 || a > g_npress) {
    outf("souk: there is no choice %lu to press", a);
    return true;
  }
  press_t *p = &g_press[a - 1];
  if (p->disabled) {
    outf("souk: choice %lu is disabled", a);
    return true;
  }
  if (p->nvalues && (k == 0 || k > p->nvalues)) {
    outf("souk: pick an option of %lu with %lu.N (1 to %zu)", a, a, p->nvalues);
    return true;
  }
  souk__cmdrun_init_t in;
  char idem[48];
  con_init(&in, idem, sizeof idem);
  in.kind = SOUK_CMD_KIND_COMPONENT;
  in.custom_id = p->custom_id;
  in.message_id = g_press_msg;
  const char *vals[1];
  if (p->nvalues) {
    vals[0] = p->values[k - 1];
    in.values = vals;
    in.nvalues = 1;
  }
  souk__cmd_invoke_component(&in);
  return true;
}

static void run_command(const char *text, size_t n) {
  souk_cmd_args_t args;
  int rc = souk__cmd_parse_text(text, n, &args);
  souk__cmdrun_init_t in;
  char idem[48];
  con_init(&in, idem, sizeof idem);
  in.kind = SOUK_CMD_KIND_COMMAND;
  souk__cmd_invoke(&in, &args, rc);
  souk_cmd_args_free(&args);
}

static void dispatch_message(const char *line, size_t n) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  char id[32];
  snprintf(id, sizeof id, "%llu", (unsigned long long)(200000000000000000ULL + g_msg_id));
  souk_jw_obj(&w);
  souk_jw_key(&w, "id"), souk_jw_str(&w, id);
  souk_jw_key(&w, "channel_id"), souk_jw_str(&w, CONSOLE_CHANNEL_ID);
  souk_jw_key(&w, "guild_id"), souk_jw_str(&w, CONSOLE_GUILD_ID);
  souk_jw_key(&w, "author");
  souk_jw_obj(&w);
  souk_jw_key(&w, "id"), souk_jw_str(&w, CONSOLE_USER_ID);
  souk_jw_key(&w, "username"), souk_jw_str(&w, "console");
  souk_jw_key(&w, "bot"), souk_jw_bool(&w, false);
  souk_jw_end(&w);
  souk_jw_key(&w, "content"), souk_jw_strn(&w, line, n);
  souk_jw_end(&w);
  souk_json_t j = {0};
  if (souk_json_parse(&j, b.data, b.len) == 0) {
    souk_event_t ev = {.name = "MESSAGE_CREATE",
                       .seq = g_msg_id,
                       .json = &j,
                       .d = 0,
                       .source = SOUK_SRC_CONSOLE,
                       .reply = console_reply};
    souk__dispatch(&ev);
  }
  souk_json_free(&j);
  souk_buf_free(&b);
}

static void run_line(const char *line, size_t n) {
  while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
  if (g_modal.active) {
    modal_line(line, n);
    return;
  }
  /* As in Discord, a command starts at the first character: " !ping" is
   * a message. */
  if (n == 0) return;
  g_msg_id++;
  if (g_npress && press_line(line, n)) return;
  const char *pfx = souk_cmd_prefix(strtoull(CONSOLE_GUILD_ID, NULL, 10));
  size_t pl = pfx ? strlen(pfx) : 0;
  if (line[0] == '/' && n > 1) {
    run_command(line + 1, n - 1);
    return;
  }
  if (pl && n > pl && memcmp(line, pfx, pl) == 0) {
    /* Only a registered command: other prefixed text stays a message. */
    souk_cmd_args_t probe;
    int rc = souk__cmd_parse_text(line + pl, n - pl, &probe);
    souk_cmd_args_free(&probe);
    if (rc != SOUK_ENOTFOUND) {
      run_command(line + pl, n - pl);
      return;
    }
  }
  dispatch_message(line, n);
}

/* Lines wait here while a command runs: the console answers one line at a
 * time, so a script piped in sees each reply before the next line runs
 * and end of input waits for the last reply. */
typedef struct qline {
  struct qline *next;
  size_t n;
  char text[];
} qline_t;

static qline_t *g_qhead, *g_qtail;
static bool g_eof;
static uv_timer_t g_pump_timer;
static bool g_pump_timer_on;

static void finish(void);

static void pump(void) {
  while (g_qhead && souk__cmd_unanswered() == 0 && g_active) {
    qline_t *l = g_qhead;
    g_qhead = l->next;
    if (!g_qhead) g_qtail = NULL;
    run_line(l->text, l->n);
    souk_free(l);
  }
  if (g_eof && !g_qhead && souk__cmd_unanswered() == 0 && g_active) finish();
}

static void pump_cb(uv_timer_t *t) { pump(); }

/* The runner went idle: continue with the queue, outside its call stack. */
static void on_idle(void) {
  if (g_pump_timer_on) uv_timer_start(&g_pump_timer, pump_cb, 0, 0);
}

static void enqueue(const char *text, size_t n) {
  qline_t *l = souk_malloc(sizeof *l + n + 1);
  l->next = NULL;
  l->n = n;
  memcpy(l->text, text, n);
  l->text[n] = '\0';
  if (g_qtail) g_qtail->next = l;
  else g_qhead = l;
  g_qtail = l;
}

static void on_line(const char *line, size_t n, void *ud) {
  enqueue(line, n);
  pump();
}

/* End of input: run what is left, then stop once the last reply is out. */
static void input_ended(void *ud) {
  g_reading = false;
  g_eof = true;
  pump();
}

static void finish(void) {
  void (*cb)(void) = g_on_eof;
  g_on_eof = NULL;
  souk__console_stop();
  if (cb) cb();
}

void souk__console_set_mode(bool console) { g_mode = console; }

uint64_t souk_cmd_console_channel(void) {
  return g_mode ? strtoull(CONSOLE_CHANNEL_ID, NULL, 10) : 0;
}

int souk__console_start(void (*on_eof)(void)) {
  uv_loop_t *loop = souk_loop();
  uint64_t me = strtoull(CONSOLE_USER_ID, NULL, 10);
  souk__cmd_set_app_owners(&me, 1);
  g_on_eof = on_eof;
  g_eof = false;
  g_session = souk_unix_ms();
  char hist[1024];
  const char *dir = souk__core_conf.data_dir;
  if (dir && dir[0]) snprintf(hist, sizeof hist, "%s/console_history", dir);
  souk__lineread_opts_t o = {.in_fd = 0,
                            .out_fd = 1,
                            .prompt = "souk> ",
                            .history_path = dir && dir[0] ? hist : NULL,
                            .max_line = CONSOLE_LINE_MAX,
                            .on_line = on_line,
                            .on_eof = input_ended};
  int rc = souk__lineread_start(&o);
  if (rc) {
    SOUK_ERROR("console", "cannot read standard input: %s", souk_strerror(rc));
    return SOUK_EIO;
  }
  g_reading = true;
  g_active = true;
  uv_timer_init(loop, &g_pump_timer);
  g_pump_timer_on = true;
  souk__cmd_set_idle_cb(on_idle);
  if (souk__lineread_is_tty())
    outf("souk console: type a command (try /help or /ping); Ctrl-D to quit.");
  return 0;
}

void souk__console_stop(void) {
  if (!g_active) return;
  g_active = false;
  souk__cmd_set_idle_cb(NULL);
  if (g_pump_timer_on) {
    g_pump_timer_on = false;
    uv_close((uv_handle_t *)&g_pump_timer, NULL);
  }
  while (g_qhead) {
    qline_t *l = g_qhead;
    g_qhead = l->next;
    souk_free(l);
  }
  g_qtail = NULL;
  g_reading = false;
  souk__lineread_stop();
  fflush(stdout);
  press_clear();
  modal_clear();
}
