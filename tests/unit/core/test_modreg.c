/* Module registry and dispatcher: ABI check, order of handlers, wildcard
 * subscriptions, init failure rolling back, reply routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "souk/err.h"
#include "souk/json.h"

static char trace[256];

static void tr(const char *s) { strncat(trace, s, sizeof trace - strlen(trace) - 1); }

static void a_msg(const souk_event_t *ev) { tr("a:msg "); }
static void a_any(const souk_event_t *ev) { tr("a:* "); }
static void b_msg(const souk_event_t *ev) { tr("b:msg "); }
static void b_ready(const souk_event_t *ev) { tr("b:ready "); }
static int a_init(void) { tr("a:init "); return 0; }
static void a_shutdown(void) { tr("a:down "); }
static int b_init_fail(void) { tr("b:init "); return SOUK_EIO; }
static int b_init_ok(void) { tr("b:init "); return 0; }
static void b_shutdown(void) { tr("b:down "); }

static const souk_event_handler_t a_events[] = {{"MESSAGE_CREATE", a_msg}, {"*", a_any}, {0}};
static const souk_event_handler_t b_events[] = {
    {"MESSAGE_CREATE", b_msg}, {"READY", b_ready}, {0}};

static souk_module_t mod_a = {.abi = SOUK_MODULE_ABI, .name = "a", .events = a_events,
                              .init = a_init, .shutdown = a_shutdown};
static souk_module_t mod_b = {.abi = SOUK_MODULE_ABI, .name = "b", .events = b_events,
                              .init = b_init_ok, .shutdown = b_shutdown};

static void dispatch_name(const char *name) {
  souk_event_t ev = {.name = name};
  souk__dispatch(&ev);
}

static void test_dispatch_order(void **state) {
  const souk_module_t *mods[] = {&mod_a, &mod_b, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  trace[0] = 0;
  uint64_t before = souk__dispatch_count();
  dispatch_name("MESSAGE_CREATE");
  assert_string_equal(trace, "a:msg a:* b:msg ");
  trace[0] = 0;
  dispatch_name("READY");
  assert_string_equal(trace, "a:* b:ready ");
  trace[0] = 0;
  dispatch_name("MESSAGE_DELETE");
  assert_string_equal(trace, "a:* ");
  assert_int_equal(souk__dispatch_count() - before, 3);
}

static void test_abi_mismatch(void **state) {
  souk_module_t bad = {.abi = SOUK_MODULE_ABI + 1, .name = "bad"};
  const souk_module_t *mods[] = {&mod_a, &bad, NULL};
  assert_int_equal(souk__modreg_init(mods), SOUK_EINVAL);
}

static void test_init_rollback(void **state) {
  souk_module_t b = mod_b;
  b.init = b_init_fail;
  const souk_module_t *mods[] = {&mod_a, &b, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  trace[0] = 0;
  assert_int_equal(souk__modreg_start(), SOUK_EIO);
  /* a started, b failed: only a is shut down. */
  assert_string_equal(trace, "a:init b:init a:down ");
}

static void test_start_stop_reverse(void **state) {
  const souk_module_t *mods[] = {&mod_a, &mod_b, NULL};
  assert_int_equal(souk__modreg_init(mods), 0);
  trace[0] = 0;
  assert_int_equal(souk__modreg_start(), 0);
  souk__modreg_stop();
  assert_string_equal(trace, "a:init b:init b:down a:down ");
  /* Stopping twice does nothing. */
  trace[0] = 0;
  souk__modreg_stop();
  assert_string_equal(trace, "");
}

static char replied[64];
static int fake_reply(const souk_event_t *ev, const char *text, size_t len) {
  snprintf(replied, sizeof replied, "%.*s", (int)len, text);
  return 0;
}

static void test_reply_routes_to_source(void **state) {
  souk_event_t ev = {.name = "MESSAGE_CREATE", .reply = fake_reply};
  assert_int_equal(souk_reply(&ev, "hello"), 0);
  assert_string_equal(replied, "hello");
  souk_event_t noreply = {.name = "MESSAGE_CREATE"};
  assert_int_equal(souk_reply(&noreply, "x"), SOUK_EINVAL);
  assert_int_equal(souk_reply(NULL, "x"), SOUK_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dispatch_order),
      cmocka_unit_test(test_abi_mismatch),
      cmocka_unit_test(test_init_rollback),
      cmocka_unit_test(test_start_stop_reverse),
      cmocka_unit_test(test_reply_routes_to_source),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
