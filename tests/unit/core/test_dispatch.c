/* The event dispatcher: handlers in the order their tables were added,
 * wildcard subscriptions, removing a table, the count, and reply routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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

static const souk_event_handler_t a_events[] = {{"MESSAGE_CREATE", a_msg}, {"*", a_any}, {0}};
static const souk_event_handler_t b_events[] = {
    {"MESSAGE_CREATE", b_msg}, {"READY", b_ready}, {0}};

static void dispatch_name(const char *name) {
  souk_event_t ev = {.name = name};
  souk__dispatch(&ev);
}

static int teardown(void **state) {
  souk__dispatch_clear();
  return 0;
}

static void test_dispatch_order(void **state) {
  souk__dispatch_add(a_events);
  souk__dispatch_add(b_events);
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

static void test_remove(void **state) {
  souk__dispatch_add(a_events);
  souk__dispatch_add(b_events);
  souk__dispatch_remove(a_events);
  trace[0] = 0;
  dispatch_name("MESSAGE_CREATE");
  assert_string_equal(trace, "b:msg ");
  /* Added again, a table comes after those still there. */
  souk__dispatch_add(a_events);
  trace[0] = 0;
  dispatch_name("MESSAGE_CREATE");
  assert_string_equal(trace, "b:msg a:msg a:* ");
  souk__dispatch_remove(a_events);
  souk__dispatch_remove(b_events);
  trace[0] = 0;
  dispatch_name("MESSAGE_CREATE");
  assert_string_equal(trace, "");
  /* Removing what is not there, or NULL, does nothing. */
  souk__dispatch_remove(b_events);
  souk__dispatch_add(NULL);
  dispatch_name("READY");
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
      cmocka_unit_test_teardown(test_dispatch_order, teardown),
      cmocka_unit_test_teardown(test_remove, teardown),
      cmocka_unit_test_teardown(test_reply_routes_to_source, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
