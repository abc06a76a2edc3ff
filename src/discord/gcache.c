/* The guild cache (see gcache.h).
 *
 * Permission rules are Discord's ("Permissions" topic, "Permission
 * Overwrites"): base = @everyone's bits | each of the member's roles'; the
 * owner and ADMINISTRATOR get everything; then, in a channel, the
 * @everyone overwrite (deny, then allow), every overwrite of the member's
 * roles together (deny all, then allow all), then the member's own
 * overwrite; a channel the member cannot view grants nothing. */
#include "discord/gcache.h"

#include "core/cmdrun.h"
#include "discord/snowflake.h"
#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/cmd.h"
#include "souk/discord.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALL_PERMS (~UINT64_C(0))

typedef struct role {
  uint64_t id, perms;
} role_t;

/* A channel's overwrite: type 0 a role, 1 a member (only the bot's). */
typedef struct ow {
  uint64_t id, allow, deny;
  uint8_t type;
} ow_t;

typedef struct chan {
  uint64_t id;
  ow_t *ows;
  uint16_t nows;
} chan_t;

typedef struct guild {
  souk__smap_ent_t ent;
  char key[24];
  uint64_t id;
  uint64_t owner;
  role_t *roles;
  size_t nroles;
  uint64_t *bot_roles; /* roles the bot holds here */
  size_t nbot_roles;
  chan_t *chans; /* sorted by id */
  size_t nchans;
} guild_t;

static struct {
  souk__smap_t guilds;
  uint64_t bot_user;
} g;

static guild_t *guild_get(uint64_t id) {
  char key[24];
  snprintf(key, sizeof key, "%" PRIu64, id);
  return (guild_t *)souk__smap_get(&g.guilds, key);
}

static void chan_free(chan_t *c) {
  souk_free(c->ows);
  c->ows = NULL;
  c->nows = 0;
}

static void guild_free(guild_t *gd) {
  for (size_t i = 0; i < gd->nchans; i++)
    chan_free(&gd->chans[i]);
  souk_free(gd->chans);
  souk_free(gd->roles);
  souk_free(gd->bot_roles);
  souk_free(gd);
}

/* ---- roles --------------------------------------------------------------------- */

static void guild_set_roles(guild_t *gd, const souk_json_t *j, int roles) {
  souk_free(gd->roles);
  gd->roles = NULL;
  gd->nroles = 0;
  size_t n = roles >= 0 ? souk_json_count(j, roles) : 0;
  if (!n) return;
  gd->roles = souk_calloc(n, sizeof *gd->roles);
  for (size_t i = 0; i < n; i++) {
    int r = souk_json_at(j, roles, i);
    gd->roles[gd->nroles].id = souk__json_id(j, souk_json_get(j, r, "id"));
    gd->roles[gd->nroles].perms = souk__json_id(j, souk_json_get(j, r, "permissions"));
    gd->nroles++;
  }
}

static void guild_role(const souk_json_t *j, int d, bool del) {
  guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "guild_id")));
  if (!gd) return;
  int role = souk_json_get(j, d, "role");
  uint64_t rid = del ? souk__json_id(j, souk_json_get(j, d, "role_id"))
                     : souk__json_id(j, souk_json_get(j, role, "id"));
  for (size_t i = 0; i < gd->nroles; i++) {
    if (gd->roles[i].id != rid) continue;
    if (del)
      gd->roles[i] = gd->roles[--gd->nroles];
    else
      gd->roles[i].perms = souk__json_id(j, souk_json_get(j, role, "permissions"));
    return;
  }
  if (del || !rid) return;
  gd->roles = souk_reallocarray(gd->roles, gd->nroles + 1, sizeof *gd->roles);
  gd->roles[gd->nroles].id = rid;
  gd->roles[gd->nroles].perms = souk__json_id(j, souk_json_get(j, role, "permissions"));
  gd->nroles++;
}

static uint64_t role_perms(const guild_t *gd, uint64_t rid) {
  for (size_t i = 0; i < gd->nroles; i++)
    if (gd->roles[i].id == rid) return gd->roles[i].perms;
  return 0;
}

/* The bot's roles from a member object (GUILD_CREATE's members, or the
 * bot's GUILD_MEMBER_UPDATE). */
static void guild_set_bot_roles(guild_t *gd, const souk_json_t *j, int roles) {
  souk_free(gd->bot_roles);
  gd->bot_roles = NULL;
  gd->nbot_roles = 0;
  size_t n = roles >= 0 ? souk_json_count(j, roles) : 0;
  if (!n) return;
  gd->bot_roles = souk_calloc(n, sizeof *gd->bot_roles);
  for (size_t i = 0; i < n; i++) {
    uint64_t id = souk__json_id(j, souk_json_at(j, roles, i));
    if (id) gd->bot_roles[gd->nbot_roles++] = id;
  }
}

/* ---- channels ------------------------------------------------------------------ */

static int chan_cmp(const void *a, const void *b) {
  uint64_t x = ((const chan_t *)a)->id, y = ((const chan_t *)b)->id;
  return x < y ? -1 : x > y;
}

static chan_t *chan_find(const guild_t *gd, uint64_t id) {
  chan_t key = {.id = id};
  return bsearch(&key, gd->chans, gd->nchans, sizeof *gd->chans, chan_cmp);
}

/* Keep the overwrites of channel object c that can concern the bot. */
static void chan_set_ows(chan_t *ch, const souk_json_t *j, int c) {
  chan_free(ch);
  int ows = souk_json_get(j, c, "permission_overwrites");
  size_t n = ows >= 0 ? souk_json_count(j, ows) : 0;
  for (size_t i = 0; i < n; i++) {
    int o = souk_json_at(j, ows, i);
    int64_t type = 0;
    souk_json_i64(j, souk_json_get(j, o, "type"), &type);
    uint64_t id = souk__json_id(j, souk_json_get(j, o, "id"));
    /* Other members' overwrites never apply to the bot. */
    if (type == 1 && (!g.bot_user || id != g.bot_user)) continue;
    if (!ch->ows) ch->ows = souk_calloc(n, sizeof *ch->ows);
    ow_t *w = &ch->ows[ch->nows++];
    w->id = id;
    w->type = (uint8_t)(type == 1);
    w->allow = souk__json_id(j, souk_json_get(j, o, "allow"));
    w->deny = souk__json_id(j, souk_json_get(j, o, "deny"));
  }
}

static void guild_set_channels(guild_t *gd, const souk_json_t *j, int chans) {
  for (size_t i = 0; i < gd->nchans; i++)
    chan_free(&gd->chans[i]);
  souk_free(gd->chans);
  gd->chans = NULL;
  gd->nchans = 0;
  size_t n = chans >= 0 ? souk_json_count(j, chans) : 0;
  if (!n) return;
  gd->chans = souk_calloc(n, sizeof *gd->chans);
  for (size_t i = 0; i < n; i++) {
    int c = souk_json_at(j, chans, i);
    uint64_t id = souk__json_id(j, souk_json_get(j, c, "id"));
    if (!id) continue;
    gd->chans[gd->nchans].id = id;
    chan_set_ows(&gd->chans[gd->nchans], j, c);
    gd->nchans++;
  }
  qsort(gd->chans, gd->nchans, sizeof *gd->chans, chan_cmp);
}

/* CHANNEL_CREATE / CHANNEL_UPDATE / CHANNEL_DELETE of a guild channel. */
static void guild_channel(const souk_json_t *j, int d, bool del) {
  guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "guild_id")));
  uint64_t id = souk__json_id(j, souk_json_get(j, d, "id"));
  if (!gd || !id) return;
  chan_t *ch = chan_find(gd, id);
  if (del) {
    if (!ch) return;
    chan_free(ch);
    size_t i = (size_t)(ch - gd->chans);
    memmove(ch, ch + 1, (gd->nchans - i - 1) * sizeof *ch);
    gd->nchans--;
    return;
  }
  if (!ch) {
    gd->chans = souk_reallocarray(gd->chans, gd->nchans + 1, sizeof *gd->chans);
    size_t i = gd->nchans;
    while (i > 0 && gd->chans[i - 1].id > id) {
      gd->chans[i] = gd->chans[i - 1];
      i--;
    }
    ch = &gd->chans[i];
    memset(ch, 0, sizeof *ch);
    ch->id = id;
    gd->nchans++;
  }
  chan_set_ows(ch, j, d);
}

/* ---- guilds -------------------------------------------------------------------- */

static void guild_upsert(const souk_json_t *j, int d) {
  uint64_t id = souk__json_id(j, souk_json_get(j, d, "id"));
  if (!id) return;
  guild_t *gd = guild_get(id);
  if (!gd) {
    gd = souk_calloc(1, sizeof *gd);
    gd->id = id;
    snprintf(gd->key, sizeof gd->key, "%" PRIu64, id);
    souk__smap_put(&g.guilds, &gd->ent, gd->key);
  }
  uint64_t owner = souk__json_id(j, souk_json_get(j, d, "owner_id"));
  if (owner) gd->owner = owner;
  int roles = souk_json_get(j, d, "roles");
  if (roles >= 0) guild_set_roles(gd, j, roles);
  /* GUILD_CREATE only: GUILD_UPDATE carries neither channels nor members. */
  int chans = souk_json_get(j, d, "channels");
  if (chans >= 0) guild_set_channels(gd, j, chans);
  int members = souk_json_get(j, d, "members");
  for (size_t i = 0; members >= 0 && g.bot_user && i < souk_json_count(j, members); i++) {
    int m = souk_json_at(j, members, i);
    if (souk__json_id(j, souk_json_path(j, m, "user", "id", NULL)) == g.bot_user) {
      guild_set_bot_roles(gd, j, souk_json_get(j, m, "roles"));
      break;
    }
  }
  souk__cmd_set_guild_count(g.guilds.n);
}

static void guild_delete(const souk_json_t *j, int d) {
  bool unavailable = false;
  souk_json_bool(j, souk_json_get(j, d, "unavailable"), &unavailable);
  guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "id")));
  /* An outage keeps what is known; leaving forgets it. */
  if (!gd || unavailable) return;
  souk__smap_del(&g.guilds, &gd->ent);
  guild_free(gd);
  souk__cmd_set_guild_count(g.guilds.n);
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
      guild_t *gd = guild_get(souk__json_id(j, souk_json_get(j, d, "guild_id")));
      if (gd && g.bot_user &&
          souk__json_id(j, souk_json_path(j, d, "user", "id", NULL)) == g.bot_user)
        guild_set_bot_roles(gd, j, souk_json_get(j, d, "roles"));
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
  uint64_t p = role_perms(gd, guild_id); /* @everyone */
  int roles = souk_json_get(j, member, "roles");
  for (size_t k = 0; roles >= 0 && k < souk_json_count(j, roles); k++)
    p |= role_perms(gd, souk__json_id(j, souk_json_at(j, roles, k)));
  if (p & SOUK_PERM_ADMINISTRATOR) return ALL_PERMS;
  return p;
}

bool souk__gcache_bot_perms(uint64_t guild_id, uint64_t channel_id, uint64_t *perms) {
  *perms = 0;
  guild_t *gd = guild_get(guild_id);
  if (!gd) return false;
  const chan_t *ch = NULL;
  if (channel_id) {
    ch = chan_find(gd, channel_id);
    if (!ch) return false;
  }
  if (g.bot_user && gd->owner == g.bot_user) {
    *perms = ALL_PERMS;
    return true;
  }
  uint64_t p = role_perms(gd, guild_id);
  for (size_t i = 0; i < gd->nbot_roles; i++)
    p |= role_perms(gd, gd->bot_roles[i]);
  if (p & SOUK_PERM_ADMINISTRATOR) {
    *perms = ALL_PERMS;
    return true;
  }
  if (ch) {
    uint64_t allow = 0, deny = 0;
    const ow_t *member = NULL;
    for (size_t i = 0; i < ch->nows; i++) {
      const ow_t *w = &ch->ows[i];
      if (w->type == 1) {
        member = w;
      } else if (w->id == guild_id) {
        p = (p & ~w->deny) | w->allow;
      } else {
        for (size_t k = 0; k < gd->nbot_roles; k++) {
          if (gd->bot_roles[k] != w->id) continue;
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

uint64_t souk__gcache_bot_user(void) { return g.bot_user; }

size_t souk__gcache_guilds(void) { return g.guilds.n; }

void souk__gcache_clear(void) {
  souk__smap_ent_t *e = souk__smap_next(&g.guilds, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(&g.guilds, e);
    souk__smap_del(&g.guilds, e);
    guild_free((guild_t *)e);
    e = nx;
  }
  souk__smap_free(&g.guilds);
  g.bot_user = 0;
  souk__cmd_set_guild_count(0);
}
