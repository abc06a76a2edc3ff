/* The setup wizards' pages, built from the settings registry.
 *
 * Every setting of a scope (guild for /setup server, user for /setup
 * user) that names a wizard step is asked for; settings of one step are
 * asked together, steps in the order they first appear in the registry
 * (the modules' order, then their tables').  A step is split into several
 * pages when it has more than one message can ask at once: a page has at
 * most WIZARD_PICKS_MAX settings answered with a menu (on/off and choices)
 * and WIZARD_TEXTS_MAX answered in a form (Discord's five fields).
 *
 * Pure: no I/O, so the tests build pages from a table of their own. */
#ifndef SETUP_WIZARD_H
#define SETUP_WIZARD_H

#include "souk/settings.h"

#include <stdbool.h>
#include <stddef.h>

#define WIZARD_PICKS_MAX 4 /* select menus: one row each, a row stays for the buttons */
#define WIZARD_TEXTS_MAX 5 /* fields of one form */
#define WIZARD_PAGES_MAX 32
#define WIZARD_ITEMS_MAX 128

/** One setting on a page. */
typedef struct wizard_item {
  const souk_setting_t *s;
  bool pick; /* a select menu (bool, or an enum of at most 25 choices); else a form field */
} wizard_item_t;

/** One page: items [first, first + n) of the wizard. */
typedef struct wizard_page {
  const char *step;
  size_t first, n;
  size_t npicks, ntexts;
} wizard_page_t;

/** A whole wizard. */
typedef struct wizard {
  wizard_item_t items[WIZARD_ITEMS_MAX];
  size_t nitems;
  wizard_page_t pages[WIZARD_PAGES_MAX];
  size_t npages;
} wizard_t;

/** Build the wizard of scope from n settings (the registry's order);
 * settings beyond the limits are left out (and logged by the caller). */
void wizard_build(wizard_t *w, souk_setting_scope_t scope, const souk_setting_t *const *settings,
                  size_t n);
/** Build it from the settings registry. */
void wizard_build_registry(wizard_t *w, souk_setting_scope_t scope);

/** "market" as a title: "Market"; "alert_channels": "Alert channels". */
void wizard_step_title(const char *step, char *out, size_t cap);

#endif
