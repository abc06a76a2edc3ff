/* The module registry: ABI and name checks, config sections, start in
 * order and stop in reverse, a failed start undone (init, or a table the
 * scheduler refuses), the context each module is handed (a throwaway
 * store, fakes in place of the process's services), and every table live
 * exactly while its module is started. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "app/modreg.h"
#include "core/cmdrun.h"
#include "core/core.h"
#include "ops/task.h"
#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/err.h"
#include "souk/httpd.h"
#include "souk/log.h"
#include "souk/store.h"
#include "souk/task.h"

static char trace[512];
static const souk_module_ctx_t *seen_init[4], *seen_down[4];

static void tr(const char *s) { strncat(trace, s, sizeof trace - strlen(trace) - 1); }

static void a_msg(const souk_event_t *ev) { tr("a:msg "); }
static void b_msg(const souk_event_t *ev) { tr("b:msg "); }

static void noop_task(souk_task_ctx_t *ctx) { souk_task_done(ctx, 0); }

static void route(souk_httpd_req_t *req) { souk_httpd_respond_text(req, 200, "ok"); }

static const souk_event_handler_t a_events[] = {{"MESSAGE_CREATE", a_msg}, {0}};
static const souk_event_handler_t b_events[] = {{"MESSAGE_CREATE", b_msg}, {0}};
static const souk_task_t a_tasks[] = {{.name = "a.tick", .period_ms = 60000, .handler = noop_task},
                                      {0}};
static const souk_task_t b_tasks[] = {{.name = "b.tick", .period_ms = 60000, .handler = noop_task},
                                      {0}};
/* A task table the scheduler refuses: its name is a's. */
static const souk_task_t clash_tasks[] = {
    {.name = "a.tick", .period_ms = 60000, .handler = noop_task}, {0}};
static const souk_route_t a_routes[] = {{"GET", "/a", SOUK_ROUTE_PUBLIC, route}, {0}};

typedef struct a_conf {
  int64_t n;
} a_conf_t;
static a_conf_t a_conf;
static const souk_conf_key_t a_keys[] = {
    {"n", SOUK_CONF_INT, offsetof(a_conf_t, n), "1", 0, 10, NULL, 0, "a number"}, {0}};

static int a_init(const souk_module_ctx_t *ctx) {
  tr("a:init ");
  seen_init[0] = ctx;
  return 0;
}
static void a_shutdown(const souk_module_ctx_t *ctx) {
  tr("a:down ");
  seen_down[0] = ctx;
}
static int b_init(const souk_module_ctx_t *ctx) {
  tr("b:init ");
  seen_init[1] = ctx;
  return 0;
}
static int b_init_fail(const souk_module_ctx_t *ctx) {
  tr("b:init ");
  return SOUK_EIO;
}
static void b_shutdown(const souk_module_ctx_t *ctx) {
  tr("b:down ");
  seen_down[1] = ctx;
}

static const souk_module_t mod_a = {.abi = SOUK_MODULE_ABI,
                                    .name = "a",
                                    .conf = a_keys,
                                    .conf_data = &a_conf,
                                    .events = a_events,
                                    .tasks = a_tasks,
                                    .routes = a_routes,
                                    .init = a_init,
                                    .shutdown = a_shutdown};
static const souk_module_t mod_b = {.abi = SOUK_MODULE_ABI,
                                    .name = "b",
                                    .events = b_events,
                                    .tasks = b_tasks,
                                    .init = b_init,
                                    .shutdown = b_shutdown};

static void dispatch_msg(void) {
  souk_event_t ev = {.name = "MESSAGE_CREATE"};
  souk__dispatch(&ev);
}

static bool task_there(const char *name) {
  souk_task_stats_t st;
  return souk_task_stats(name, &st) == 0;
}

static int setup(void **state) {
  souk__sched_init(NULL);
  trace[0] = 0;
  memset(seen_init, 0, sizeof seen_init);
  memset(seen_down, 0, sizeof seen_down);
  return 0;
}

static int teardown(void **state) {
  souk__modreg_stop();
  souk__modreg_init(NULL);
  souk__sched_shutdown();
  souk__dispatch_clear();
  return 0;
}

static void test_list_checks(void **state) {
  souk_module_t bad = {.abi = SOUK_MODULE_ABI + 1, .name = "bad"};
  const souk_module_t *mods[] = {&mod_a, &bad, NULL};
  assert_int_equal(souk__modreg_init(mods), SOUK_EINVAL);
  souk_module_t noname = {.abi = SOUK_MODULE_ABI};
  const souk_module_t *mods2[] = {&noname, NULL};
  assert_int_equal(souk__modreg_init(mods2), SOUK_EINVAL);
  const souk_module_t *ok[] = {&mod_a, &mod_b, NULL};
  assert_int_equal(souk__modreg_init(ok), 0);
  assert_int_equal(souk__modreg_count(), 2);
  assert_ptr_equal(souk__modreg_at(1), &mod_b);
  assert_null(souk__modreg_at(2));
  /* Only modules with a config table have a section, named after them. */
  souk_conf_section_t secs[3];
  size_t n = 0;
  souk__modreg_sections(secs, &n);
  assert_int_equal(n, 1);
  assert_string_equal(secs[0].name, "a");
  assert_ptr_equal(secs[0].keys, a_keys);
  assert_ptr_equal(secs[0].data, &a_conf);
}

static void test_start_stop_reverse(void **state) {
  const souk_module_t *mods[] = {&mod_a, &mod_b, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  assert_int_equal(souk__modreg_start(NULL), 0);
  assert_string_equal(trace, "a:init b:init ");
  /* Live while started: handlers in module order, both tasks. */
  trace[0] = 0;
  dispatch_msg();
  assert_string_equal(trace, "a:msg b:msg ");
  assert_true(task_there("a.tick"));
  assert_true(task_there("b.tick"));
  trace[0] = 0;
  souk__modreg_stop();
  assert_string_equal(trace, "b:down a:down ");
  /* Gone after the stop. */
  trace[0] = 0;
  dispatch_msg();
  assert_string_equal(trace, "");
  assert_false(task_there("a.tick"));
  assert_false(task_there("b.tick"));
  /* Stopping twice does nothing. */
  souk__modreg_stop();
  assert_string_equal(trace, "");
}

static void test_failed_init_undone(void **state) {
  souk_module_t b = mod_b;
  b.init = b_init_fail;
  const souk_module_t *mods[] = {&mod_a, &b, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  assert_int_equal(souk__modreg_start(NULL), SOUK_EIO);
  /* a started, b failed: a is shut down, b's shutdown is not called. */
  assert_string_equal(trace, "a:init b:init a:down ");
  trace[0] = 0;
  dispatch_msg();
  assert_string_equal(trace, "");
  assert_false(task_there("a.tick"));
  assert_false(task_there("b.tick"));
}

static void test_refused_table_undone(void **state) {
  souk_module_t b = mod_b;
  b.tasks = clash_tasks;
  const souk_module_t *mods[] = {&mod_a, &b, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  assert_int_equal(souk__modreg_start(NULL), SOUK_EEXIST);
  /* b's init succeeded, so its shutdown runs when its table is refused;
   * then a stops.  a's task, which b's clashed with, is gone too. */
  assert_string_equal(trace, "a:init b:init b:down a:down ");
  assert_false(task_there("a.tick"));
}

static void test_routes_only_when_asked(void **state) {
  const souk_module_t *mods[] = {&mod_a, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  /* Without routes (the console), a's table is not mounted: mounting it
   * here succeeds. */
  assert_int_equal(souk__modreg_start(&(souk__modreg_services_t){.routes = false}), 0);
  assert_int_equal(souk_httpd_mount(a_routes, NULL), 0);
  souk_httpd_unmount(a_routes);
  souk__modreg_stop();
  /* With routes it is mounted while a runs, and unmounted at its stop. */
  assert_int_equal(souk__modreg_start(&(souk__modreg_services_t){.routes = true}), 0);
  assert_int_equal(souk_httpd_mount(a_routes, NULL), SOUK_EEXIST);
  souk__modreg_stop();
  assert_int_equal(souk_httpd_mount(a_routes, NULL), 0);
  souk_httpd_unmount(a_routes);
}

/* ---- the context ---------------------------------------------------------- */

static int fake_requests;
static int fake_request(const struct souk_http_opts *o,
                        void (*cb)(const struct souk_http_resp *resp, void *ud), void *ud,
                        struct souk_http_req **out_opt) {
  fake_requests++;
  return SOUK_ECONN;
}
static void fake_cancel(struct souk_http_req *req) {}
static const souk_http_client_t fake_http = {fake_request, fake_cancel};

/* A module that keeps its context and writes through its store at init. */
static const souk_module_ctx_t *kept;

static int put_fn(souk_db_t *db, void *ud) { return souk_db_kv_put(db, "test", "k", "v", 1); }

static int kv_init(const souk_module_ctx_t *ctx) {
  kept = ctx;
  if (!ctx->store) return SOUK_ENOTSUP;
  ctx->http->request(NULL, NULL, NULL, NULL);
  return souk_store_tx(ctx->store, put_fn, NULL);
}

static void kv_shutdown(const souk_module_ctx_t *ctx) {
  /* The context is still the one init got. */
  assert_ptr_equal(ctx, kept);
  tr("kv:down ");
}

static const souk_module_t mod_kv = {.abi = SOUK_MODULE_ABI,
                                     .name = "kv",
                                     .conf_data = &a_conf,
                                     .init = kv_init,
                                     .shutdown = kv_shutdown};

static int get_fn(souk_db_t *db, void *ud) { return souk_db_kv_get(db, "test", "k", ud, NULL); }

static void test_context(void **state) {
  char dir[] = "/tmp/souk-modreg-XXXXXX";
  assert_non_null(mkdtemp(dir));
  souk_store_conf_t c;
  souk_store_conf_defaults(&c);
  c.backup_before_migrate = false;
  souk_store_t *st = NULL;
  assert_int_equal(souk_store_open(&c, dir, &st), 0);

  const souk_module_t *mods[] = {&mod_a, &mod_kv, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  souk__modreg_services_t svc = {.store = st, .http = &fake_http};
  assert_int_equal(souk__modreg_start(&svc), 0);
  /* a's context: its table, name, config, and the services. */
  const souk_module_ctx_t *ca = souk__modreg_ctx(0);
  assert_ptr_equal(ca, seen_init[0]);
  assert_ptr_equal(ca->module, &mod_a);
  assert_string_equal(ca->log, "a");
  assert_ptr_equal(ca->conf, &a_conf);
  assert_ptr_equal(ca->store, st);
  assert_null(ca->cache);
  assert_ptr_equal(ca->http, &fake_http);
  assert_non_null(ca->tasks);
  assert_non_null(ca->metrics);
  /* The scheduler in the context is the process's: a task added through
   * it runs on the same scheduler, and leaves with remove. */
  static const souk_task_t extra = {.name = "a.extra", .period_ms = 1000, .handler = noop_task};
  assert_int_equal(ca->tasks->add(&extra), 0);
  assert_true(task_there("a.extra"));
  ca->tasks->remove(&extra);
  assert_false(task_there("a.extra"));
  /* kv wrote through the throwaway store and asked the fake client. */
  assert_int_equal(fake_requests, 1);
  souk_buf_t b = {0};
  assert_int_equal(souk_store_read(st, get_fn, &b), 0);
  assert_int_equal(b.len, 1);
  assert_int_equal(b.data[0], 'v');
  souk_buf_free(&b);
  souk__modreg_stop();
  assert_null(souk__modreg_ctx(0));
  assert_ptr_equal(seen_down[0], seen_init[0]);

  /* Without a store, kv refuses to start, and a is stopped again. */
  trace[0] = 0;
  assert_int_equal(souk__modreg_start(&(souk__modreg_services_t){0}), SOUK_ENOTSUP);
  assert_string_equal(trace, "a:init a:down ");

  souk_store_close(st);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* ---- the module's own schema ----------------------------------------------- */

static const souk_migration_t notes_schema[] = {
    {1, "notes", "CREATE TABLE notes_items (id BIGINT PRIMARY KEY)", NULL},
    {0},
};
static const souk_migration_t broken_schema[] = {
    {1, "broken", "NOT SQL AT ALL", NULL},
    {0},
};

static int notes_put(souk_db_t *db, void *ud) {
  return souk_db_exec(db, "INSERT INTO notes_items (id) VALUES (1)");
}

/* Its table exists by the time init runs. */
static int notes_init(const souk_module_ctx_t *ctx) {
  tr("notes:init ");
  return souk_store_tx(ctx->store, notes_put, NULL);
}

static void test_migrations_before_init(void **state) {
  char dir[] = "/tmp/souk-modreg-XXXXXX";
  assert_non_null(mkdtemp(dir));
  souk_store_conf_t c;
  souk_store_conf_defaults(&c);
  c.backup_before_migrate = false;
  souk_store_t *st = NULL;
  assert_int_equal(souk_store_open(&c, dir, &st), 0);
  souk_module_t notes = {.abi = SOUK_MODULE_ABI,
                         .name = "notes",
                         .migrations = notes_schema,
                         .init = notes_init};
  const souk_module_t *mods[] = {&mod_a, &notes, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  souk__modreg_services_t svc = {.store = st};
  assert_int_equal(souk__modreg_start(&svc), 0);
  int v = 0;
  assert_int_equal(souk_store_module_version(st, "notes", &v), 0);
  assert_int_equal(v, 1);
  souk__modreg_stop();
  /* A schema that fails stops the start: no init, and a is undone. */
  notes.migrations = broken_schema;
  notes.name = "broken";
  trace[0] = 0;
  assert_int_not_equal(souk__modreg_start(&svc), 0);
  assert_string_equal(trace, "a:init a:down ");
  souk__modreg_init(NULL);
  souk_store_close(st);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* ---- commands -------------------------------------------------------------- */

static void cmd_x(souk_cmd_ctx_t *ctx) { souk_cmd_replyf(ctx, "x"); }

static const souk_command_t good_cmds[] = {{.name = "x", .description = "x", .handler = cmd_x},
                                           {0}};
static const souk_command_t bad_cmds[] = {
    {.name = "Not A Name", .description = "x", .handler = cmd_x}, {0}};

static void test_commands(void **state) {
  souk_module_t g = {.abi = SOUK_MODULE_ABI, .name = "g", .commands = good_cmds};
  souk_module_t bad = {.abi = SOUK_MODULE_ABI, .name = "bad", .commands = bad_cmds};
  const souk_module_t *mods[] = {&g, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  assert_int_equal(souk__modreg_commands(), 0);
  const char *owner = NULL;
  assert_non_null(souk__cmd_find("x", &owner));
  assert_string_equal(owner, "g");
  souk__cmd_clear();
  const souk_module_t *mods2[] = {&bad, NULL};
  assert_int_equal(souk__modreg_init(mods2), 0);
  assert_int_equal(souk__modreg_commands(), SOUK_EINVAL);
  assert_null(souk__cmd_find("x", NULL));
  souk__cmd_clear();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_list_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_stop_reverse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_init_undone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_table_undone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_only_when_asked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_context, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrations_before_init, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
  };
  souk_log_set_level(SOUK_LOG_OFF);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
