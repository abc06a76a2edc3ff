/* The setup wizards' pages (see wizard.h). */
#include "wizard.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool is_pick(const souk_setting_t *s) {
  if (s->type == SOUK_SETTING_BOOL) return true;
  if (s->type != SOUK_SETTING_ENUM || !s->choices) return false;
  size_t n = 0;
  while (s->choices[n])
    n++;
  return n >= 1 && n <= 25; /* a select menu's limit */
}

void wizard_build(wizard_t *w, souk_setting_scope_t scope, const souk_setting_t *const *settings,
                  size_t n) {
  memset(w, 0, sizeof *w);
  /* Steps in the order they first appear; a step's settings together,
   * whatever module declared them. */
  const char *steps[WIZARD_PAGES_MAX];
  size_t nsteps = 0;
  for (size_t i = 0; i < n; i++) {
    const souk_setting_t *s = settings[i];
    if (!s || s->scope != scope || !s->step || !s->step[0]) continue;
    size_t k = 0;
    while (k < nsteps && strcmp(steps[k], s->step) != 0)
      k++;
    if (k == nsteps && nsteps < WIZARD_PAGES_MAX) steps[nsteps++] = s->step;
  }
  for (size_t k = 0; k < nsteps; k++) {
    wizard_page_t *p = NULL;
    for (size_t i = 0; i < n; i++) {
      const souk_setting_t *s = settings[i];
      if (!s || s->scope != scope || !s->step || strcmp(s->step, steps[k]) != 0) continue;
      if (w->nitems == WIZARD_ITEMS_MAX) return;
      bool pick = is_pick(s);
      /* A new page when this one cannot ask for one more of this kind. */
      if (!p || (pick && p->npicks == WIZARD_PICKS_MAX) ||
          (!pick && p->ntexts == WIZARD_TEXTS_MAX)) {
        if (w->npages == WIZARD_PAGES_MAX) return;
        p = &w->pages[w->npages++];
        p->step = steps[k];
        p->first = w->nitems;
      }
      /* Items of a page are contiguous: a page is closed before the next
       * one opens, since settings of one step fill pages in order. */
      w->items[w->nitems++] = (wizard_item_t){s, pick};
      p->n++;
      if (pick)
        p->npicks++;
      else
        p->ntexts++;
    }
  }
}

void wizard_build_registry(wizard_t *w, souk_setting_scope_t scope) {
  const souk_setting_t *all[WIZARD_ITEMS_MAX * 2];
  size_t n = 0;
  for (size_t i = 0; i < souk_setting_count() && n < sizeof all / sizeof *all; i++)
    all[n++] = souk_setting_at(i, NULL);
  wizard_build(w, scope, all, n);
}

void wizard_step_title(const char *step, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; step && step[i] && o + 1 < cap; i++) {
    char c = step[i] == '_' || step[i] == '.' || step[i] == '-' ? ' ' : step[i];
    out[o] = o == 0 ? (char)toupper((unsigned char)c) : c;
    o++;
  }
  if (cap) out[o < cap ? o : cap - 1] = '\0';
}
