/* The member cache; see members.h. */
#include "discord/members.h"

#include "discord/dconf.h"
#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/json.h"
#include "souk/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct member {
  uint64_t id;
  uint32_t nroles;
  uint64_t roles[];
} member_t;

/* One guild's members: an open-addressing table of pointers, at most 3/4
 * full, so a lookup touches one or two slots. */
typedef struct mguild {
  souk__smap_ent_t ent;
  char key[24];
  member_t **tab;
  size_t cap, n;
} mguild_t;

static struct {
  bool on;
  souk__smap_t guilds;
  size_t total;
} M;

static uint64_t snowflake(const souk_json_t *j, int t) {
  char buf[24];
  if (t < 0 || souk_json_str(j, t, buf, sizeof buf) <= 0) return 0;
  return strtoull(buf, NULL, 10);
}

static size_t slot_of(const mguild_t *g, uint64_t id) {
  /* Snowflakes end in a counter and a worker id: mix before masking. */
  uint64_t h = id * UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)(h >> 32) & (g->cap - 1);
}

static mguild_t *guild_of(uint64_t gid, bool create) {
  char key[24];
  snprintf(key, sizeof key, "%" PRIu64, gid);
  souk__smap_ent_t *e = souk__smap_get(&M.guilds, key);
  if (e || !create) return (mguild_t *)e;
  mguild_t *g = souk_calloc(1, sizeof *g);
  memcpy(g->key, key, sizeof key);
  souk__smap_put(&M.guilds, &g->ent, g->key);
  return g;
}

static member_t **find(mguild_t *g, uint64_t id) {
  if (!g->cap) return NULL;
  for (size_t i = slot_of(g, id);; i = (i + 1) & (g->cap - 1)) {
    if (!g->tab[i]) return &g->tab[i];
    if (g->tab[i]->id == id) return &g->tab[i];
  }
}

static void grow(mguild_t *g, size_t want) {
  size_t cap = g->cap ? g->cap : 8;
  while (want * 4 > cap * 3)
    cap *= 2;
  if (cap == g->cap) return;
  member_t **old = g->tab;
  size_t ocap = g->cap;
  g->tab = souk_calloc(cap, sizeof *g->tab);
  g->cap = cap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i]) *find(g, old[i]->id) = old[i];
  souk_free(old);
}

/* Insert or replace the member described by the object m (its "user" or
 * "user_id", and "roles"). */
static void upsert(mguild_t *g, const souk_json_t *j, int m, uint64_t uid) {
  if (!uid) uid = snowflake(j, souk_json_get(j, souk_json_get(j, m, "user"), "id"));
  if (!uid) return;
  int roles = souk_json_get(j, m, "roles");
  size_t nr = roles >= 0 ? souk_json_count(j, roles) : 0;
  if (nr > 250) nr = 250; /* Discord's own limit on a guild's roles */
  grow(g, g->n + 1);
  member_t **slot = find(g, uid);
  member_t *x = *slot;
  if (!x || x->nroles != nr) {
    x = souk_realloc(x, sizeof *x + nr * sizeof x->roles[0]);
    if (!*slot) {
      g->n++;
      M.total++;
    }
    *slot = x;
  }
  x->id = uid;
  x->nroles = (uint32_t)nr;
  for (size_t i = 0; i < nr; i++)
    x->roles[i] = snowflake(j, souk_json_at(j, roles, i));
}

static void remove_member(mguild_t *g, uint64_t uid) {
  member_t **slot = find(g, uid);
  if (!slot || !*slot) return;
  souk_free(*slot);
  *slot = NULL;
  g->n--;
  M.total--;
  /* Backward-shift the cluster after the hole so lookups stay correct. */
  size_t i = (size_t)(slot - g->tab);
  for (size_t k = (i + 1) & (g->cap - 1); g->tab[k]; k = (k + 1) & (g->cap - 1)) {
    member_t *e = g->tab[k];
    g->tab[k] = NULL;
    *find(g, e->id) = e;
  }
}

static void guild_drop(mguild_t *g) {
  for (size_t i = 0; i < g->cap; i++)
    souk_free(g->tab[i]);
  M.total -= g->n;
  souk_free(g->tab);
  souk__smap_del(&M.guilds, &g->ent);
  souk_free(g);
}

static void add_list(const souk_json_t *j, int d, uint64_t gid, const char *field) {
  int list = souk_json_get(j, d, field);
  if (list < 0 || !gid) return;
  mguild_t *g = guild_of(gid, true);
  size_t n = souk_json_count(j, list);
  grow(g, g->n + n);
  for (size_t i = 0; i < n; i++)
    upsert(g, j, souk_json_at(j, list, i), 0);
}

void souk__members_start(void) {
  M.on = souk__discord_conf.cache_members;
  if (M.on) SOUK_INFO("members", "member cache on (discord.cache.members)");
}

void souk__members_stop(void) {
  souk__smap_ent_t *e = souk__smap_next(&M.guilds, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(&M.guilds, e);
    guild_drop((mguild_t *)e);
    e = nx;
  }
  souk__smap_free(&M.guilds);
  memset(&M, 0, sizeof M);
}

void souk__members_event(const souk_event_t *ev) {
  if (!M.on || !ev->json) return;
  const souk_json_t *j = ev->json;
  int d = ev->d;
  const char *n = ev->name;
  if (!strcmp(n, "GUILD_CREATE")) {
    add_list(j, d, snowflake(j, souk_json_get(j, d, "id")), "members");
  } else if (!strcmp(n, "GUILD_MEMBERS_CHUNK")) {
    add_list(j, d, snowflake(j, souk_json_get(j, d, "guild_id")), "members");
  } else if (!strcmp(n, "GUILD_MEMBER_ADD") || !strcmp(n, "GUILD_MEMBER_UPDATE")) {
    uint64_t gid = snowflake(j, souk_json_get(j, d, "guild_id"));
    if (gid) upsert(guild_of(gid, true), j, d, 0);
  } else if (!strcmp(n, "MESSAGE_CREATE")) {
    /* A message carries its author's member (without "user"): keeps the
     * cache fresh for the members who speak, even without GUILD_MEMBERS. */
    uint64_t gid = snowflake(j, souk_json_get(j, d, "guild_id"));
    int m = souk_json_get(j, d, "member");
    uint64_t uid = snowflake(j, souk_json_get(j, souk_json_get(j, d, "author"), "id"));
    if (gid && m >= 0 && uid) upsert(guild_of(gid, true), j, m, uid);
  } else if (!strcmp(n, "GUILD_MEMBER_REMOVE")) {
    mguild_t *g = guild_of(snowflake(j, souk_json_get(j, d, "guild_id")), false);
    if (g) remove_member(g, snowflake(j, souk_json_get(j, souk_json_get(j, d, "user"), "id")));
  } else if (!strcmp(n, "GUILD_DELETE")) {
    mguild_t *g = guild_of(snowflake(j, souk_json_get(j, d, "id")), false);
    if (g) guild_drop(g);
  }
}

bool souk__members_get(uint64_t guild, uint64_t user, const uint64_t **roles, size_t *n) {
  mguild_t *g = guild_of(guild, false);
  member_t **slot = g ? find(g, user) : NULL;
  if (!slot || !*slot) return false;
  if (roles) *roles = (*slot)->roles;
  if (n) *n = (*slot)->nroles;
  return true;
}

size_t souk__members_count(uint64_t guild) {
  mguild_t *g = guild_of(guild, false);
  return g ? g->n : 0;
}

size_t souk__members_total(void) { return M.total; }
