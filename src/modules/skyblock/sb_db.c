/* The skyblock module's tables; see sb_db.h. */
#include "sb_db.h"

#include "souk/err.h"

#include <stdio.h>
#include <string.h>

/* Run a prepared statement to its end (no rows expected). */
static int run(souk_stmt_t *s, int64_t *changes) {
  int rc = souk_stmt_step(s);
  if (rc >= 0 && changes) *changes += souk_stmt_changes(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int sb_db_alert_put(souk_db_t *db, const sb_db_alert_t *a) {
  souk_stmt_t *s;
  int rc =
      souk_db_prepare(db,
                      "INSERT INTO skyblock_alerts (uuid, item_key, attrs, seller, unit_price, "
                      "at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uuid) DO NOTHING",
                      &s);
  if (rc) return rc;
  souk_stmt_bind_text(s, 1, a->uuid, SIZE_MAX);
  souk_stmt_bind_text(s, 2, a->key, SIZE_MAX);
  souk_stmt_bind_text(s, 3, a->attrs, SIZE_MAX);
  souk_stmt_bind_text(s, 4, a->seller, SIZE_MAX);
  souk_stmt_bind_int64(s, 5, a->unit);
  souk_stmt_bind_int64(s, 6, a->at);
  return run(s, NULL);
}

static void col_text(souk_stmt_t *s, int col, char *out, size_t cap) {
  const char *t = souk_stmt_column_text(s, col, NULL);
  snprintf(out, cap, "%s", t ? t : "");
}

int sb_db_alerts_load(souk_db_t *db, int64_t since, size_t max,
                      void (*fn)(void *ud, const sb_db_alert_t *a), void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "SELECT uuid, item_key, attrs, seller, unit_price, at_ms FROM "
                           "(SELECT * FROM skyblock_alerts WHERE at_ms >= ? ORDER BY at_ms DESC, "
                           "uuid LIMIT ?) t ORDER BY at_ms ASC, uuid",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, since);
  souk_stmt_bind_int64(s, 2, (int64_t)max);
  while ((rc = souk_stmt_step(s)) == 1) {
    sb_db_alert_t a;
    col_text(s, 0, a.uuid, sizeof a.uuid);
    col_text(s, 1, a.key, sizeof a.key);
    col_text(s, 2, a.attrs, sizeof a.attrs);
    col_text(s, 3, a.seller, sizeof a.seller);
    a.unit = souk_stmt_column_int64(s, 4);
    a.at = souk_stmt_column_int64(s, 5);
    fn(ud, &a);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int sb_db_alerts_prune(souk_db_t *db, int64_t before, int64_t keep, int64_t *deleted) {
  int64_t n = 0;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "DELETE FROM skyblock_alerts WHERE at_ms < ?", &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, before);
  if ((rc = run(s, &n)) != 0) return rc;
  rc = souk_db_prepare(db,
                       "DELETE FROM skyblock_alerts WHERE uuid NOT IN (SELECT uuid FROM "
                       "skyblock_alerts ORDER BY at_ms DESC, uuid LIMIT ?)",
                       &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, keep);
  rc = run(s, &n);
  if (deleted) *deleted = n;
  return rc;
}

int sb_db_watch_put(souk_db_t *db, const sb_sub_t *w, int64_t at) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(
      db,
      "INSERT INTO skyblock_watch (user_id, query, guild_id, channel_id, min_profit, max_price, "
      "paused, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, query) DO "
      "UPDATE SET guild_id = excluded.guild_id, channel_id = excluded.channel_id, min_profit = "
      "excluded.min_profit, max_price = excluded.max_price, paused = excluded.paused",
      &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)w->user_id);
  souk_stmt_bind_text(s, 2, w->query, SIZE_MAX);
  souk_stmt_bind_int64(s, 3, (int64_t)w->guild_id);
  souk_stmt_bind_int64(s, 4, (int64_t)w->channel_id);
  souk_stmt_bind_int64(s, 5, w->min_profit);
  souk_stmt_bind_int64(s, 6, w->max_price);
  souk_stmt_bind_int64(s, 7, w->paused);
  souk_stmt_bind_int64(s, 8, at);
  return run(s, NULL);
}

int sb_db_watch_del(souk_db_t *db, uint64_t user_id, const char *query) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           query ? "DELETE FROM skyblock_watch WHERE user_id = ? AND query = ?"
                                 : "DELETE FROM skyblock_watch WHERE user_id = ?",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)user_id);
  if (query) souk_stmt_bind_text(s, 2, query, SIZE_MAX);
  return run(s, NULL);
}

int sb_db_watch_pause(souk_db_t *db, uint64_t user_id) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "UPDATE skyblock_watch SET paused = 1 WHERE user_id = ?", &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)user_id);
  return run(s, NULL);
}

int sb_db_watch_load(souk_db_t *db, void (*fn)(void *ud, const sb_sub_t *s), void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "SELECT user_id, query, guild_id, channel_id, min_profit, max_price, "
                           "paused FROM skyblock_watch ORDER BY created_at, user_id, query",
                           &s);
  if (rc) return rc;
  while ((rc = souk_stmt_step(s)) == 1) {
    sb_sub_t w;
    memset(&w, 0, sizeof w);
    w.user_id = (uint64_t)souk_stmt_column_int64(s, 0);
    col_text(s, 1, w.query, sizeof w.query);
    w.guild_id = (uint64_t)souk_stmt_column_int64(s, 2);
    w.channel_id = (uint64_t)souk_stmt_column_int64(s, 3);
    w.min_profit = souk_stmt_column_int64(s, 4);
    w.max_price = souk_stmt_column_int64(s, 5);
    w.paused = souk_stmt_column_int64(s, 6) != 0;
    fn(ud, &w);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int sb_db_guild_put(souk_db_t *db, uint64_t guild_id, int64_t at) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "INSERT INTO skyblock_guilds (guild_id, updated_at) VALUES (?, ?) "
                           "ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)guild_id);
  souk_stmt_bind_int64(s, 2, at);
  return run(s, NULL);
}

int sb_db_guilds_load(souk_db_t *db, void (*fn)(void *ud, uint64_t guild_id), void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "SELECT guild_id FROM skyblock_guilds ORDER BY guild_id", &s);
  if (rc) return rc;
  while ((rc = souk_stmt_step(s)) == 1)
    fn(ud, (uint64_t)souk_stmt_column_int64(s, 0));
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

void sb_db_register_data(void) {
  souk_store_register_data("skyblock_watch", "user_id", "guild_id");
  souk_store_register_data("skyblock_guilds", NULL, "guild_id");
}
