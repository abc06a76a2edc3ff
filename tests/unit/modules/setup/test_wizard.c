/* The setup wizards' pages: steps in the order they first appear, one
 * step's settings together whatever module declared them, and a step
 * split when one message cannot ask for all of it. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/setup/wizard.c"

static const char *const kinds[] = {"sim", "live", NULL};

#define G(k, t, st)                                                                                \
  { .key = k, .scope = SOUK_SETTING_GUILD, .type = t, .label = k, .step = st }

static const souk_setting_t table[] = {
    G("stats.members_channel", SOUK_SETTING_CHANNEL, "channels"),
    G("market.start_cash", SOUK_SETTING_MONEY, "market"),
    {.key = "market.source",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_ENUM,
     .choices = kinds,
     .label = "Source",
     .step = "market"},
    G("skyblock.alerts_channel", SOUK_SETTING_CHANNEL, "channels"),
    G("economy.enabled", SOUK_SETTING_BOOL, "economy"),
    G("market.hidden", SOUK_SETTING_INT, NULL), /* no step: /settings set only */
    {.key = "setup.timezone",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_TIMEZONE,
     .label = "tz",
     .step = "profile"},
};

static void build(wizard_t *w, souk_setting_scope_t scope, const souk_setting_t *t, size_t n) {
  const souk_setting_t *p[64];
  for (size_t i = 0; i < n; i++)
    p[i] = &t[i];
  wizard_build(w, scope, p, n);
}

static void test_steps(void **state) {
  wizard_t w;
  build(&w, SOUK_SETTING_GUILD, table, sizeof table / sizeof *table);
  assert_int_equal(w.npages, 3);
  assert_string_equal(w.pages[0].step, "channels");
  assert_string_equal(w.pages[1].step, "market");
  assert_string_equal(w.pages[2].step, "economy");
  /* Both channels on one page although other modules came between. */
  assert_int_equal(w.pages[0].n, 2);
  assert_string_equal(w.items[w.pages[0].first].s->key, "stats.members_channel");
  assert_string_equal(w.items[w.pages[0].first + 1].s->key, "skyblock.alerts_channel");
  assert_int_equal(w.pages[0].ntexts, 2);
  /* An enum and a bool are menus; money is typed. */
  assert_int_equal(w.pages[1].npicks, 1);
  assert_int_equal(w.pages[1].ntexts, 1);
  assert_true(w.items[w.pages[2].first].pick);
  assert_int_equal(w.nitems, 5);
  build(&w, SOUK_SETTING_USER, table, sizeof table / sizeof *table);
  assert_int_equal(w.npages, 1);
  assert_string_equal(w.pages[0].step, "profile");
}

/* Seven typed settings and six switches in one step: pages of at most
 * five fields and four menus, in order. */
static void test_split(void **state) {
  static souk_setting_t big[13];
  static char keys[13][16];
  for (int i = 0; i < 13; i++) {
    snprintf(keys[i], sizeof keys[i], "m.k%d", i);
    big[i] = (souk_setting_t){.key = keys[i],
                              .scope = SOUK_SETTING_GUILD,
                              .type = i % 2 ? SOUK_SETTING_BOOL : SOUK_SETTING_INT,
                              .label = keys[i],
                              .step = "many"};
  }
  wizard_t w;
  build(&w, SOUK_SETTING_GUILD, big, 13);
  assert_int_equal(w.nitems, 13);
  size_t texts = 0, picks = 0, seen = 0;
  for (size_t p = 0; p < w.npages; p++) {
    assert_true(w.pages[p].ntexts <= WIZARD_TEXTS_MAX);
    assert_true(w.pages[p].npicks <= WIZARD_PICKS_MAX);
    assert_int_equal(w.pages[p].first, seen); /* contiguous, in order */
    seen += w.pages[p].n;
    texts += w.pages[p].ntexts;
    picks += w.pages[p].npicks;
    assert_string_equal(w.pages[p].step, "many");
  }
  assert_int_equal(seen, 13);
  assert_int_equal(texts, 7);
  assert_int_equal(picks, 6);
  assert_int_equal(w.npages, 2);
  /* An enum with more choices than a menu holds is typed instead. */
  static const char *many[30];
  static char names[29][4];
  for (int i = 0; i < 29; i++) {
    snprintf(names[i], sizeof names[i], "c%d", i);
    many[i] = names[i];
  }
  many[29] = NULL;
  souk_setting_t e = {.key = "m.e",
                      .scope = SOUK_SETTING_GUILD,
                      .type = SOUK_SETTING_ENUM,
                      .choices = many,
                      .label = "e",
                      .step = "s"};
  build(&w, SOUK_SETTING_GUILD, &e, 1);
  assert_false(w.items[0].pick);
}

static void test_titles(void **state) {
  char t[32];
  wizard_step_title("alert_channels", t, sizeof t);
  assert_string_equal(t, "Alert channels");
  wizard_step_title("market", t, sizeof t);
  assert_string_equal(t, "Market");
  wizard_step_title("x", t, 1);
  assert_string_equal(t, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_steps),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_titles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
