/* The guild cache (see gcache.h).
 *
 * Permission rules are Discord's ("Permissions" topic, "Permission
 * Overwrites"): base = @everyone's bits | each of the member's roles'; the
 * owner and ADMINISTRATOR get everything; then, in a channel, the
 * @everyone overwrite (deny, then allow), every overwrite of the member's
 * roles together (deny all, then allow all), then the member's own
 * overwrite; a channel the member cannot view grants nothing.
 *
 * Layout.  Every guild the bot is in is kept, so the bytes per guild are
 * what a process of thousands of guilds pays: each guild is one
 * allocation (a header, then its roles, the bot's roles, its channel ids
 * and the overwrites that concern the bot, packed), and the guilds are
 * found by id in an open-addressing table of pointers.  A channel with no
 * overwrite costs its id alone.  Events that change a guild (a role, a
 * channel, the bot's roles) build the guild again: they are rare next to
 * the permission checks, which only read. */
#include "discord/gcache.h"

#include "core/cmdrun.h"
#include "discord/snowflake.h"
#include "souk/alloc.h"
#include "souk/cmd.h"
#include "souk/discord.h"
#include "souk/err.h"

#include <stdlib.h>
#include <string.h>

#define ALL_PERMS (~UINT64_C(0))

typedef struct role {
  uint64_t id, perms;
} role_t;

/* An overwrite of channel chans[chan]: type 0 a role, 1 a member (only the
 * bot's).  A guild's overwrites are sorted by chan. */
typedef struct ow {
  uint64_t id, allow, deny;
  uint32_t chan;
  uint32_t type;
} ow_t;

/* The parts of a guild, either inside a packed guild or being built. */
typedef struct parts {
  const role_t *roles;
  size_t nroles;
  const uint64_t *bot_roles; /* roles the bot holds here */
  size_t nbot_roles;
  const uint64_t *chans; /* channel ids, sorted */
  size_t nchans;
  const ow_t *ows;
  size_t nows;
} parts_t;

/* The header; roles, bot roles, channel ids and overwrites follow it in
 * the same allocation, in that order (all 8-byte aligned). */
typedef struct guild {
  uint64_t id;
  uint64_t owner;
  uint32_t nroles, nbot_roles, nchans, nows;
  uint64_t tail[];
} guild_t;

static struct {
  guild_t **tab; /* open addressing, linear probing; NULL is empty */
  size_t cap;    /* a power of two, or 0 */
  size_t n;
  uint64_t bot_user;
} g;

/* Guilds of the shards other processes run (discord/handoff.h), added to
 * this process's own for souk_cmd_guilds(): {guilds} and /help show the
 * bot's, not one process's. */
static uint64_t g_others;

/* Told of every guild an event changed (discord/handoff.h writes it on). */
static void (*g_changed)(uint64_t guild_id);

static void changed(uint64_t id) {
  if (g_changed) g_changed(id);
}

static void count_changed(void) { souk__cmd_set_guild_count(g.n + g_others); }

static parts_t parts_of(const guild_t *gd) {
  parts_t p;
  p.roles = (const role_t *)gd->tail;
  p.nroles = gd->nroles;
  p.bot_roles = (const uint64_t *)(p.roles + p.nroles);
  p.nbot_roles = gd->nbot_roles;
  p.chans = p.bot_roles + p.nbot_roles;
  p.nchans = gd->nchans;
  p.ows = (const ow_t *)(p.chans + p.nchans);
  p.nows = gd->nows;
  return p;
}

/* A new guild holding copies of p's arrays. */
static guild_t *guild_pack(uint64_t id, uint64_t owner, const parts_t *p) {
  size_t bytes = sizeof(guild_t) + p->nroles * sizeof(role_t) +
                 (p->nbot_roles + p->nchans) * sizeof(uint64_t) + p->nows * sizeof(ow_t);
  guild_t *gd = souk_malloc(bytes);
  gd->id = id;
  gd->owner = owner;
  gd->nroles = (uint32_t)p->nroles;
  gd->nbot_roles = (uint32_t)p->nbot_roles;
  gd->nchans = (uint32_t)p->nchans;
  gd->nows = (uint32_t)p->nows;
  parts_t q = parts_of(gd);
  if (p->nroles) memcpy((role_t *)q.roles, p->roles, p->nroles * sizeof *p->roles);
  if (p->nbot_roles)
    memcpy((uint64_t *)q.bot_roles, p->bot_roles, p->nbot_roles * sizeof *p->bot_roles);
  if (p->nchans) memcpy((uint64_t *)q.chans, p->chans, p->nchans * sizeof *p->chans);
  if (p->nows) memcpy((ow_t *)q.ows, p->ows, p->nows * sizeof *p->ows);
  return gd;
}

/* ---- the table of guilds ----------------------------------------------------- */

static size_t slot_of(uint64_t id) {
  /* Snowflakes differ mostly in their low timestamp and counter bits. */
  uint64_t h = (id ^ (id >> 29)) * UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)(h >> 32) & (g.cap - 1);
}

static guild_t **slot_find(uint64_t id) {
  if (!g.cap) return NULL;
  for (size_t i = slot_of(id);; i = (i + 1) & (g.cap - 1)) {
    if (!g.tab[i]) return NULL;
    if (g.tab[i]->id == id) return &g.tab[i];
  }
}

static guild_t *guild_get(uint64_t id) {
  guild_t **s = slot_find(id);
  return s ? *s : NULL;
}

static void table_insert(guild_t *gd) {
  size_t i = slot_of(gd->id);
  while (g.tab[i])
    i = (i + 1) & (g.cap - 1);
  g.tab[i] = gd;
}

/* Add a guild whose id is not in the table; the table is kept at most 3/4
 * full so that probes stay short. */
static void table_add(guild_t *gd) {
  if ((g.n + 1) * 4 > g.cap * 3) {
    guild_t **old = g.tab;
    size_t ocap = g.cap;
    g.cap = ocap ? ocap * 2 : 16;
    g.tab = souk_calloc(g.cap, sizeof *g.tab);
    for (size_t i = 0; i < ocap; i++)
      if (old[i]) table_insert(old[i]);
    souk_free(old);
  }
  table_insert(gd);
  g.n++;
}

/* Remove the guild in slot s, moving later entries of its probe run back
 * so that every entry stays reachable from its home slot. */
static void table_remove(guild_t **s) {
  size_t i = (size_t)(s - g.tab);
  g.tab[i] = NULL;
  g.n--;
  for (size_t j = (i + 1) & (g.cap - 1); g.tab[j]; j = (j + 1) & (g.cap - 1)) {
    size_t home = slot_of(g.tab[j]->id);
    /* Entry j may fill the hole at i unless its home lies cyclically in
     * (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    g.tab[i] = g.tab[j];
    g.tab[j] = NULL;
    i = j;
  }
}

/* Put the guild rebuilt from parts p in the place of the old one (freed). */
static void guild_replace(guild_t *old, const parts_t *p) {
  guild_t *gd = guild_pack(old->id, old->owner, p);
  *slot_find(old->id) = gd;
  souk_free(old);
}

/* ---- roles --------------------------------------------------------------------- */

/* The roles of a role array (GUILD_CREATE/UPDATE), in a new array. */
static role_t *roles_read(const souk_json_t *j, int roles, size_t *n) {
  *n = souk_json_count(j, roles);
  role_t *r = souk_calloc(*n ? *n : 1, sizeof *r);
  for (size_t i = 0; i < *n; i++) {
    int o = souk_json_at(j, roles, i);
    r[i].id = souk__json_id(j, souk_json_get(j, o, "id"));
    r[i].perms = souk__json_id(j, souk_json_get(j, o, "permissions"));
  }
  return r;
}

static void guild_role(const souk_json_t *j, int d, bool del) {
  guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "guild_id")));
  if (!gd) return;
  int role = souk_json_get(j, d, "role");
  uint64_t rid = del ? souk__json_id(j, souk_json_get(j, d, "role_id"))
                     : souk__json_id(j, souk_json_get(j, role, "id"));
  parts_t p = parts_of(gd);
  size_t at = p.nroles;
  for (size_t i = 0; i < p.nroles; i++)
    if (p.roles[i].id == rid) at = i;
  if (at < p.nroles && !del) {
    ((role_t *)p.roles)[at].perms = souk__json_id(j, souk_json_get(j, role, "permissions"));
    changed(gd->id);
    return;
  }
  if (del ? at == p.nroles : !rid) return;
  role_t *r = souk_calloc(p.nroles + 1, sizeof *r);
  memcpy(r, p.roles, p.nroles * sizeof *r);
  if (del) {
    r[at] = r[p.nroles - 1];
    p.nroles--;
  } else {
    r[p.nroles].id = rid;
    r[p.nroles].perms = souk__json_id(j, souk_json_get(j, role, "permissions"));
    p.nroles++;
  }
  p.roles = r;
  uint64_t gid = gd->id;
  guild_replace(gd, &p);
  souk_free(r);
  changed(gid);
}

static uint64_t role_perms(const parts_t *p, uint64_t rid) {
  for (size_t i = 0; i < p->nroles; i++)
    if (p->roles[i].id == rid) return p->roles[i].perms;
  return 0;
}

/* The bot's roles from a member object's "roles" (GUILD_CREATE's members,
 * or the bot's GUILD_MEMBER_UPDATE), in a new array. */
static uint64_t *bot_roles_read(const souk_json_t *j, int roles, size_t *n) {
  size_t k = roles >= 0 ? souk_json_count(j, roles) : 0;
  uint64_t *r = souk_calloc(k ? k : 1, sizeof *r);
  *n = 0;
  for (size_t i = 0; i < k; i++) {
    uint64_t id = souk__json_id(j, souk_json_at(j, roles, i));
    if (id) r[(*n)++] = id;
  }
  return r;
}

/* ---- channels ------------------------------------------------------------------ */

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int ow_cmp(const void *a, const void *b) {
  uint32_t x = ((const ow_t *)a)->chan, y = ((const ow_t *)b)->chan;
  return x < y ? -1 : x > y;
}

/* Index of channel id in p's sorted ids, or -1. */
static long chan_find(const parts_t *p, uint64_t id) {
  const uint64_t *c = bsearch(&id, p->chans, p->nchans, sizeof *p->chans, u64_cmp);
  return c ? (long)(c - p->chans) : -1;
}

/* The first of p's overwrites of channel index ci (p->nows if none); a
 * channel's overwrites follow one another. */
static size_t ows_first(const parts_t *p, size_t ci) {
  size_t lo = 0, hi = p->nows;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->ows[mid].chan < ci)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Append to *ows the overwrites of channel object c that can concern the
 * bot, as overwrites of channel index ci. */
static void ows_read(const souk_json_t *j, int c, uint32_t ci, ow_t **ows, size_t *n,
                     size_t *cap) {
  int arr = souk_json_get(j, c, "permission_overwrites");
  size_t k = arr >= 0 ? souk_json_count(j, arr) : 0;
  for (size_t i = 0; i < k; i++) {
    int o = souk_json_at(j, arr, i);
    int64_t type = 0;
    souk_json_i64(j, souk_json_get(j, o, "type"), &type);
    uint64_t id = souk__json_id(j, souk_json_get(j, o, "id"));
    /* Other members' overwrites never apply to the bot. */
    if (type == 1 && (!g.bot_user || id != g.bot_user)) continue;
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 8;
      *ows = souk_reallocarray(*ows, *cap, sizeof **ows);
    }
    ow_t *w = &(*ows)[(*n)++];
    w->id = id;
    w->type = type == 1;
    w->chan = ci;
    w->allow = souk__json_id(j, souk_json_get(j, o, "allow"));
    w->deny = souk__json_id(j, souk_json_get(j, o, "deny"));
  }
}

/* A channel array (GUILD_CREATE): its ids, sorted, and their overwrites,
 * sorted by channel, into p (new arrays the caller frees). */
static void chans_read(const souk_json_t *j, int chans, parts_t *p, uint64_t **ids,
                       ow_t **ows) {
  size_t n = souk_json_count(j, chans), nids = 0;
  typedef struct {
    uint64_t id;
    int tok;
  } pair_t;
  pair_t *pairs = souk_calloc(n ? n : 1, sizeof *pairs);
  for (size_t i = 0; i < n; i++) {
    int c = souk_json_at(j, chans, i);
    uint64_t id = souk__json_id(j, souk_json_get(j, c, "id"));
    if (!id) continue;
    pairs[nids].id = id;
    pairs[nids].tok = c;
    nids++;
  }
  qsort(pairs, nids, sizeof *pairs, u64_cmp); /* id is the first member */
  *ids = souk_calloc(nids ? nids : 1, sizeof **ids);
  *ows = NULL;
  size_t nows = 0, cap = 0;
  for (size_t i = 0; i < nids; i++) {
    (*ids)[i] = pairs[i].id;
    ows_read(j, pairs[i].tok, (uint32_t)i, ows, &nows, &cap);
  }
  souk_free(pairs);
  p->chans = *ids;
  p->nchans = nids;
  p->ows = *ows;
  p->nows = nows;
}

/* CHANNEL_CREATE / CHANNEL_UPDATE / CHANNEL_DELETE of a guild channel. */
static void guild_channel(const souk_json_t *j, int d, bool del) {
  guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "guild_id")));
  uint64_t id = souk__json_id(j, souk_json_get(j, d, "id"));
  if (!gd || !id) return;
  parts_t p = parts_of(gd);
  long at = chan_find(&p, id);
  if (del && at < 0) return;
  /* The new channel ids: the old with id removed (delete) or added at its
   * place (create); the same for an update. */
  size_t ci = at >= 0 ? (size_t)at : 0;
  if (at < 0)
    while (ci < p.nchans && p.chans[ci] < id)
      ci++;
  uint64_t *ids = souk_calloc(p.nchans + 1, sizeof *ids);
  memcpy(ids, p.chans, ci * sizeof *ids);
  size_t nids = ci;
  if (!del) ids[nids++] = id;
  size_t rest = p.nchans - ci - (at >= 0);
  memcpy(ids + nids, p.chans + ci + (at >= 0), rest * sizeof *ids);
  nids += rest;
  /* The overwrites: the other channels' (renumbered), then this one's. */
  ow_t *ows = NULL;
  size_t nows = 0, cap = 0;
  if (p.nows) {
    cap = p.nows;
    ows = souk_calloc(cap, sizeof *ows);
  }
  for (size_t i = 0; i < p.nows; i++) {
    ow_t w = p.ows[i];
    if (at >= 0 && w.chan == (uint32_t)at) continue;
    if (w.chan >= ci && at < 0) w.chan++;      /* a channel was inserted before it */
    else if (w.chan > ci && del) w.chan--;     /* the channel before it was deleted */
    ows[nows++] = w;
  }
  if (!del) ows_read(j, d, (uint32_t)ci, &ows, &nows, &cap);
  if (nows) qsort(ows, nows, sizeof *ows, ow_cmp);
  p.chans = ids;
  p.nchans = nids;
  p.ows = ows;
  p.nows = nows;
  uint64_t gid = gd->id;
  guild_replace(gd, &p);
  souk_free(ids);
  souk_free(ows);
  changed(gid);
}

/* ---- guilds -------------------------------------------------------------------- */

static void guild_upsert(const souk_json_t *j, int d) {
  uint64_t id = souk__json_id(j, souk_json_get(j, d, "id"));
  if (!id) return;
  guild_t *gd = guild_get(id);
  parts_t p = {0};
  uint64_t owner = 0;
  if (gd) {
    p = parts_of(gd);
    owner = gd->owner;
  }
  uint64_t o = souk__json_id(j, souk_json_get(j, d, "owner_id"));
  if (o) owner = o;
  role_t *roles = NULL;
  uint64_t *bot_roles = NULL, *chans = NULL;
  ow_t *ows = NULL;
  int arr = souk_json_get(j, d, "roles");
  if (arr >= 0) {
    roles = roles_read(j, arr, &p.nroles);
    p.roles = roles;
  }
  /* GUILD_CREATE only: GUILD_UPDATE carries neither channels nor members. */
  arr = souk_json_get(j, d, "channels");
  if (arr >= 0) chans_read(j, arr, &p, &chans, &ows);
  int members = souk_json_get(j, d, "members");
  for (size_t i = 0; members >= 0 && g.bot_user && i < souk_json_count(j, members); i++) {
    int m = souk_json_at(j, members, i);
    if (souk__json_id(j, souk_json_path(j, m, "user", "id", NULL)) == g.bot_user) {
      bot_roles = bot_roles_read(j, souk_json_get(j, m, "roles"), &p.nbot_roles);
      p.bot_roles = bot_roles;
      break;
    }
  }
  guild_t *nw = guild_pack(id, owner, &p);
  if (gd) {
    *slot_find(id) = nw;
    souk_free(gd);
  } else {
    table_add(nw);
  }
  souk_free(roles);
  souk_free(bot_roles);
  souk_free(chans);
  souk_free(ows);
  count_changed();
  changed(id);
}

static void guild_delete(const souk_json_t *j, int d) {
  bool unavailable = false;
  souk_json_bool(j, souk_json_get(j, d, "unavailable"), &unavailable);
  guild_t **s = slot_find(souk__json_id(j, souk_json_get(j, d, "id")));
  /* An outage keeps what is known; leaving forgets it. */
  if (!s || unavailable) return;
  guild_t *gd = *s;
  uint64_t id = gd->id;
  table_remove(s);
  souk_free(gd);
  count_changed();
  changed(id);
}

/* The bot's GUILD_MEMBER_UPDATE: its roles in that guild. */
static void guild_bot_member(const souk_json_t *j, int d) {
  guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "guild_id")));
  if (!gd || !g.bot_user ||
      souk__json_id(j, souk_json_path(j, d, "user", "id", NULL)) != g.bot_user)
    return;
  parts_t p = parts_of(gd);
  uint64_t *r = bot_roles_read(j, souk_json_get(j, d, "roles"), &p.nbot_roles);
  p.bot_roles = r;
  uint64_t gid = gd->id;
  guild_replace(gd, &p);
  souk_free(r);
  changed(gid);
}

void souk__gcache_event(const souk_event_t *ev) {
  const char *n = ev->name;
  const souk_json_t *j = ev->json;
  int d = ev->d;
  if (n[0] == 'R' && strcmp(n, "READY") == 0) {
    g.bot_user = souk__json_id(j, souk_json_path(j, d, "user", "id", NULL));
  } else if (n[0] == 'G') {
    if (strcmp(n, "GUILD_CREATE") == 0 || strcmp(n, "GUILD_UPDATE") == 0) {
      guild_upsert(j, d);
    } else if (strcmp(n, "GUILD_DELETE") == 0) {
      guild_delete(j, d);
    } else if (strcmp(n, "GUILD_ROLE_CREATE") == 0 || strcmp(n, "GUILD_ROLE_UPDATE") == 0) {
      guild_role(j, d, false);
    } else if (strcmp(n, "GUILD_ROLE_DELETE") == 0) {
      guild_role(j, d, true);
    } else if (strcmp(n, "GUILD_MEMBER_UPDATE") == 0) {
      guild_bot_member(j, d);
    }
  } else if (n[0] == 'C') {
    if (strcmp(n, "CHANNEL_CREATE") == 0 || strcmp(n, "CHANNEL_UPDATE") == 0)
      guild_channel(j, d, false);
    else if (strcmp(n, "CHANNEL_DELETE") == 0)
      guild_channel(j, d, true);
  }
}

/* ---- permissions --------------------------------------------------------------- */

uint64_t souk__gcache_member_perms(uint64_t guild_id, uint64_t user, const souk_json_t *j,
                                   int member) {
  guild_t *gd = guild_get(guild_id);
  if (!gd) return 0;
  if (gd->owner == user) return ALL_PERMS;
  parts_t p = parts_of(gd);
  uint64_t perms = role_perms(&p, guild_id); /* @everyone */
  int roles = souk_json_get(j, member, "roles");
  for (size_t k = 0; roles >= 0 && k < souk_json_count(j, roles); k++)
    perms |= role_perms(&p, souk__json_id(j, souk_json_at(j, roles, k)));
  if (perms & SOUK_PERM_ADMINISTRATOR) return ALL_PERMS;
  return perms;
}

bool souk__gcache_bot_perms(uint64_t guild_id, uint64_t channel_id, uint64_t *perms) {
  *perms = 0;
  guild_t *gd = guild_get(guild_id);
  if (!gd) return false;
  parts_t gp = parts_of(gd);
  long ci = -1;
  if (channel_id) {
    ci = chan_find(&gp, channel_id);
    if (ci < 0) return false;
  }
  if (g.bot_user && gd->owner == g.bot_user) {
    *perms = ALL_PERMS;
    return true;
  }
  uint64_t p = role_perms(&gp, guild_id);
  for (size_t i = 0; i < gp.nbot_roles; i++)
    p |= role_perms(&gp, gp.bot_roles[i]);
  if (p & SOUK_PERM_ADMINISTRATOR) {
    *perms = ALL_PERMS;
    return true;
  }
  if (ci >= 0) {
    uint64_t allow = 0, deny = 0;
    const ow_t *member = NULL;
    for (size_t i = ows_first(&gp, (size_t)ci); i < gp.nows && gp.ows[i].chan == (uint32_t)ci;
         i++) {
      const ow_t *w = &gp.ows[i];
      if (w->type == 1) {
        member = w;
      } else if (w->id == guild_id) {
        p = (p & ~w->deny) | w->allow;
      } else {
        for (size_t k = 0; k < gp.nbot_roles; k++) {
          if (gp.bot_roles[k] != w->id) continue;
          allow |= w->allow;
          deny |= w->deny;
        }
      }
    }
    p = (p & ~deny) | allow;
    if (member) p = (p & ~member->deny) | member->allow;
    if (!(p & SOUK_PERM_VIEW_CHANNEL)) p = 0;
  }
  *perms = p;
  return true;
}

/* ---- records handed on ---------------------------------------------------------- */

/* A record is the packed guild itself behind a small header: the format's
 * tag (written in this machine's byte order, so a host of the other order
 * reads a wrong tag and ignores the record) and the bot's user id, which a
 * process that saw no READY needs before the replayed events (the bot's
 * member overwrites and GUILD_MEMBER_UPDATE are recognised by it). */
#define REC_TAG UINT32_C(0x31474b53) /* "SKG1" read little-endian */

typedef struct rec_head {
  uint32_t tag, reserved;
  uint64_t bot_user;
} rec_head_t;

static size_t guild_bytes(const guild_t *gd) {
  return sizeof(guild_t) + gd->nroles * sizeof(role_t) +
         ((size_t)gd->nbot_roles + gd->nchans) * sizeof(uint64_t) + gd->nows * sizeof(ow_t);
}

void *souk__gcache_record(uint64_t guild_id, size_t *len) {
  guild_t *gd = guild_get(guild_id);
  *len = 0;
  if (!gd) return NULL;
  size_t gb = guild_bytes(gd);
  rec_head_t head = {.tag = REC_TAG, .bot_user = g.bot_user};
  unsigned char *r = souk_malloc(sizeof head + gb);
  memcpy(r, &head, sizeof head);
  memcpy(r + sizeof head, gd, gb);
  *len = sizeof head + gb;
  return r;
}

int souk__gcache_restore(const void *rec, size_t len) {
  rec_head_t head;
  guild_t gh;
  if (!rec || len < sizeof head + sizeof gh) return SOUK_EPROTO;
  memcpy(&head, rec, sizeof head);
  memcpy(&gh, (const unsigned char *)rec + sizeof head, sizeof gh);
  if (head.tag != REC_TAG || !gh.id || guild_bytes(&gh) != len - sizeof head) return SOUK_EPROTO;
  /* Another bot's state (two bots sharing a key prefix) is not ours. */
  if (head.bot_user && g.bot_user && head.bot_user != g.bot_user) return SOUK_EPROTO;
  guild_t *gd = souk_malloc(len - sizeof head);
  memcpy(gd, (const unsigned char *)rec + sizeof head, len - sizeof head);
  /* The lookups rely on sorted channel ids and overwrites grouped by a
   * channel that exists: a record that breaks that is refused, not
   * trusted. */
  parts_t p = parts_of(gd);
  bool ok = true;
  for (size_t i = 1; ok && i < p.nchans; i++)
    ok = p.chans[i - 1] < p.chans[i];
  for (size_t i = 0; ok && i < p.nows; i++)
    ok = p.ows[i].chan < p.nchans && (i == 0 || p.ows[i - 1].chan <= p.ows[i].chan);
  if (!ok) {
    souk_free(gd);
    return SOUK_EPROTO;
  }
  if (!g.bot_user) g.bot_user = head.bot_user;
  guild_t **s = slot_find(gd->id);
  if (s) {
    souk_free(*s);
    *s = gd;
  } else {
    table_add(gd);
    count_changed();
  }
  return 0;
}

void souk__gcache_on_change(void (*fn)(uint64_t guild_id)) { g_changed = fn; }

uint64_t souk__gcache_bot_user(void) { return g.bot_user; }

void souk__gcache_set_bot_user(uint64_t id) {
  if (!g.bot_user) g.bot_user = id;
}

size_t souk__gcache_guilds(void) { return g.n; }

size_t souk__gcache_guilds_of(uint32_t shard, uint32_t count) {
  if (count <= 1) return shard == 0 ? g.n : 0;
  size_t n = 0;
  for (size_t i = 0; i < g.cap; i++)
    n += g.tab[i] && ((g.tab[i]->id >> 22) % count) == shard;
  return n;
}

void souk__gcache_set_others(uint64_t n) {
  g_others = n;
  count_changed();
}

void souk__gcache_clear(void) {
  for (size_t i = 0; i < g.cap; i++)
    souk_free(g.tab[i]);
  souk_free(g.tab);
  g.tab = NULL;
  g.cap = g.n = 0;
  g_others = 0;
  g.bot_user = 0;
  souk__cmd_set_guild_count(0);
}
