/* Every guild's member count, for the presence's {members}, and only when
 * an activity shows it: an open-addressing table of (guild id, count), 16
 * bytes a slot at most 3/4 full, instead of a guild state per guild.  A
 * guild's count comes from its GUILD_CREATE (again after an outage or a
 * new session: it replaces, never adds), moves with member events and
 * polls, and goes with GUILD_DELETE.  Loop thread only. */
#include "souk/alloc.h"
#include "stats_int.h"

#include <string.h>

typedef struct mc_ent {
  uint64_t id; /* 0: free */
  int64_t n;
} mc_ent_t;

static struct {
  mc_ent_t *tab;
  size_t cap, n;
  int64_t total;
} M;

bool stats_members_wanted(void) {
  const souk_conf_strs_t *a = &stats_conf.activities;
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i] && strstr(a->v[i], "{members}")) return true;
  return false;
}

static size_t slot_of(uint64_t id) {
  uint64_t h = id * UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)(h ^ (h >> 29)) & (M.cap - 1);
}

static mc_ent_t *find(uint64_t id) {
  if (!M.cap) return NULL;
  for (size_t i = slot_of(id);; i = (i + 1) & (M.cap - 1)) {
    if (M.tab[i].id == id) return &M.tab[i];
    if (!M.tab[i].id) return NULL;
  }
}

static void grow(void) {
  size_t oldcap = M.cap;
  mc_ent_t *old = M.tab;
  M.cap = oldcap ? oldcap * 2 : 64;
  M.tab = souk_calloc(M.cap, sizeof *M.tab);
  for (size_t i = 0; i < oldcap; i++) {
    if (!old[i].id) continue;
    size_t j = slot_of(old[i].id);
    while (M.tab[j].id)
      j = (j + 1) & (M.cap - 1);
    M.tab[j] = old[i];
  }
  souk_free(old);
}

void stats_members_set(uint64_t id, int64_t n) {
  if (!id || n < 0) return;
  mc_ent_t *e = find(id);
  if (!e) {
    if (!stats_members_wanted()) return;
    if ((M.n + 1) * 4 > M.cap * 3) grow();
    size_t i = slot_of(id);
    while (M.tab[i].id)
      i = (i + 1) & (M.cap - 1);
    e = &M.tab[i];
    e->id = id;
    e->n = 0;
    M.n++;
  }
  M.total += n - e->n;
  e->n = n;
}

void stats_members_add(uint64_t id, int delta) {
  mc_ent_t *e = find(id);
  if (!e || e->n + delta < 0) return;
  e->n += delta;
  M.total += delta;
}

void stats_members_drop(uint64_t id) {
  mc_ent_t *e = find(id);
  if (!e) return;
  M.total -= e->n;
  size_t i = (size_t)(e - M.tab);
  memset(e, 0, sizeof *e);
  M.n--;
  /* Shift back the entries after it, so a lookup never stops early. */
  for (size_t j = (i + 1) & (M.cap - 1); M.tab[j].id; j = (j + 1) & (M.cap - 1)) {
    size_t home = slot_of(M.tab[j].id);
    bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (between) continue;
    M.tab[i] = M.tab[j];
    memset(&M.tab[j], 0, sizeof M.tab[j]);
    i = j;
  }
}

int64_t stats_members_total(void) { return M.total; }

void stats_members_free(void) {
  souk_free(M.tab);
  memset(&M, 0, sizeof M);
}
