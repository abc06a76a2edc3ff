/* The Market Sim's players' display names; see players.h. */
#include "players.h"

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <stdio.h>
#include <string.h>

/* The module's own schema, versioned per module (souk/store.h): append
 * steps, never edit one. */
const souk_migration_t market_migrations[] = {
    {1, "players' display names",
     "CREATE TABLE market_players (guild_id BIGINT NOT NULL, user_id BIGINT NOT NULL,"
     " name TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (guild_id, user_id));"
     "CREATE INDEX market_players_user ON market_players (user_id)",
     NULL},
    {0},
};

char *market_name_clean(const char *name, char *out) {
  const unsigned char *p = (const unsigned char *)(name ? name : "");
  size_t n = strlen((const char *)p), i = 0, o = 0;
  while (i < n) {
    size_t k = souk_utf8_seq(p + i, n - i);
    if (k == 0) { /* not UTF-8: dropped, as Discord never sends it */
      i++;
      continue;
    }
    if (o + k > MARKET_NAME_MAX) break;
    if (k == 1 && (p[i] < 0x20 || p[i] == 0x7f))
      out[o++] = ' ';
    else
      memcpy(out + o, p + i, k), o += k;
    i += k;
  }
  out[o] = '\0';
  return out;
}

int market_player_name_put(souk_db_t *db, int64_t guild_id, int64_t user_id, const char *name,
                           int64_t now_ms) {
  char clean[MARKET_NAME_MAX + 1];
  market_name_clean(name, clean);
  if (!clean[0]) return 0;
  souk_stmt_t *s;
  /* The WHERE leaves an unchanged name's row alone (no write at all). */
  int rc = souk_db_prepare(db,
                           "INSERT INTO market_players (guild_id, user_id, name, updated_at) "
                           "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE SET "
                           "name = excluded.name, updated_at = excluded.updated_at "
                           "WHERE market_players.name <> excluded.name",
                           &s);
  if (rc) return rc;
  rc = souk_stmt_bind_int64(s, 1, guild_id);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 2, user_id);
  if (rc == 0) rc = souk_stmt_bind_text(s, 3, clean, strlen(clean));
  if (rc == 0) rc = souk_stmt_bind_int64(s, 4, now_ms);
  if (rc == 0) rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int market_player_name_update(souk_db_t *db, int64_t guild_id, int64_t user_id, const char *name,
                              int64_t now_ms) {
  char clean[MARKET_NAME_MAX + 1];
  market_name_clean(name, clean);
  if (!clean[0]) return 0;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "UPDATE market_players SET name = ?, updated_at = ? WHERE guild_id = ? "
                           "AND user_id = ? AND name <> ?",
                           &s);
  if (rc) return rc;
  rc = souk_stmt_bind_text(s, 1, clean, strlen(clean));
  if (rc == 0) rc = souk_stmt_bind_int64(s, 2, now_ms);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 3, guild_id);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 4, user_id);
  if (rc == 0) rc = souk_stmt_bind_text(s, 5, clean, strlen(clean));
  if (rc == 0) rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int market_player_names(souk_db_t *db, int64_t guild_id, const int64_t *users, size_t n,
                        char (*names)[MARKET_NAME_MAX + 1]) {
  for (size_t i = 0; i < n; i++)
    names[i][0] = '\0';
  if (n == 0) return 0;
  /* One query for a page of players (at most a few dozen ids). */
  souk_buf_t sql;
  souk_buf_init(&sql);
  souk_buf_puts(&sql,
                "SELECT user_id, name FROM market_players WHERE guild_id = ? AND user_id IN (");
  for (size_t i = 0; i < n; i++)
    souk_buf_puts(&sql, i ? ", ?" : "?");
  souk_buf_puts(&sql, ")");
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql.data, &s);
  souk_buf_free(&sql);
  if (rc) return rc;
  rc = souk_stmt_bind_int64(s, 1, guild_id);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = souk_stmt_bind_int64(s, (int)i + 2, users[i]);
  while (rc == 0 && (rc = souk_stmt_step(s)) == 1) {
    int64_t u = souk_stmt_column_int64(s, 0);
    const char *name = souk_stmt_column_text(s, 1, NULL);
    rc = 0;
    for (size_t i = 0; i < n; i++)
      if (users[i] == u) market_name_clean(name, names[i]);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

char *market_name_md(const char *name, int64_t user_id, char *out, size_t cap) {
  if (!name || !name[0]) {
    snprintf(out, cap, "<@%lld>", (long long)user_id);
    return out;
  }
  /* Every character that Discord's markdown gives a meaning to gets a
   * backslash, so a name shows as typed: emphasis, code, spoilers, quotes,
   * headings, lists, masked links, mentions and escapes themselves. */
  static const char special[] = "\\*_~`|>#-[]()<@:";
  size_t o = 0;
  if (cap < 6) {
    if (cap) out[0] = '\0';
    return out;
  }
  out[o++] = '*';
  out[o++] = '*';
  for (const char *p = name; *p && o + 4 < cap; p++) {
    if (strchr(special, *p)) out[o++] = '\\';
    out[o++] = *p;
  }
  out[o++] = '*';
  out[o++] = '*';
  out[o] = '\0';
  return out;
}

/* ---- names seen by this process ------------------------------------------ */

/* The name each recent caller was last seen under, by hash, in a small
 * direct-mapped table: a collision only costs one more UPDATE that
 * changes nothing.  Loop thread only. */
#define SEEN_SLOTS 512

typedef struct seen {
  int64_t guild, user;
  uint64_t hash;
} seen_t;

static seen_t g_seen[SEEN_SLOTS];

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * UINT64_C(1099511628211);
  return h;
}

static size_t seen_slot(int64_t guild, int64_t user) {
  uint64_t h = UINT64_C(1469598103934665603);
  h = fnv(&guild, sizeof guild, h);
  h = fnv(&user, sizeof user, h);
  return (size_t)(h % SEEN_SLOTS);
}

static uint64_t name_hash(const char *name) {
  return fnv(name, strlen(name), UINT64_C(1469598103934665603)) | 1; /* never 0: "none" */
}

void market_player_seen_reset(void) { memset(g_seen, 0, sizeof g_seen); }

void market_player_noted(int64_t guild_id, int64_t user_id, const char *name) {
  char clean[MARKET_NAME_MAX + 1];
  market_name_clean(name, clean);
  seen_t *e = &g_seen[seen_slot(guild_id, user_id)];
  *e = (seen_t){guild_id, user_id, name_hash(clean)};
}

typedef struct name_job {
  int64_t guild, user;
  uint64_t hash;
  char name[MARKET_NAME_MAX + 1];
} name_job_t;

static int name_update_tx(souk_db_t *db, void *ud) {
  const name_job_t *j = ud;
  return market_player_name_update(db, j->guild, j->user, j->name, (int64_t)souk_unix_ms());
}

static void name_update_done(void *ud, int status) {
  name_job_t *j = ud;
  if (status) {
    /* Seen again later, it is tried again. */
    seen_t *e = &g_seen[seen_slot(j->guild, j->user)];
    if (e->guild == j->guild && e->user == j->user && e->hash == j->hash) e->hash = 0;
    SOUK_DEBUG("market", "keeping a player's new name failed: %s", souk_strerror(status));
  }
  souk_free(j);
}

void market_player_seen(const souk_cmd_ctx_t *ctx, souk_store_t *st) {
  if (!st || !ctx || ctx->guild_id == 0 || ctx->kind == SOUK_CMD_KIND_AUTOCOMPLETE) return;
  /* The runner's stand-in when a surface knew no name: not a name. */
  if (!ctx->user_name || !ctx->user_name[0] || !strcmp(ctx->user_name, "someone")) return;
  name_job_t *j = souk_calloc(1, sizeof *j);
  j->guild = (int64_t)ctx->guild_id;
  j->user = (int64_t)ctx->user_id;
  market_name_clean(ctx->user_name, j->name);
  j->hash = name_hash(j->name);
  seen_t *e = &g_seen[seen_slot(j->guild, j->user)];
  if (!j->name[0] || (e->guild == j->guild && e->user == j->user && e->hash == j->hash)) {
    souk_free(j);
    return;
  }
  *e = (seen_t){j->guild, j->user, j->hash};
  if (souk_store_tx_async(st, name_update_tx, name_update_done, j) != 0) {
    e->hash = 0;
    souk_free(j);
  }
}
