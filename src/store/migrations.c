/* Versioned migrations, oldest first.
 *
 * Rules: never edit a released migration, only append; write portable SQL
 * where the backends agree and give sql_pg where they do not (BLOB vs
 * BYTEA, AUTOINCREMENT vs identity columns).  Integers are BIGINT on both so
 * values read back as int64 everywhere.  schema_version itself is created by
 * the runner before the first migration. */
#include "store/store_int.h"

/* v2, the Market Sim (src/modules/market/ledger.c): per-guild game settings,
 * accounts per guild and season, holdings as (shares, total cost), the
 * trade audit trail keyed by the interaction that caused it, one value
 * snapshot per user per day, and the persisted price cache.  Money is
 * BIGINT cents, prices BIGINT micro-dollars; CHECKs keep cash, shares and
 * cost from going negative whatever the code does. */
#define MARKET_V2_COMMON                                                                           \
  "CREATE TABLE market_settings ("                                                                 \
  " guild_id BIGINT PRIMARY KEY,"                                                                  \
  " season BIGINT NOT NULL DEFAULT 1 CHECK (season >= 1),"                                         \
  " start_cash_cents BIGINT NOT NULL DEFAULT 100000000 CHECK (start_cash_cents >= 0),"             \
  " price_source TEXT NOT NULL DEFAULT 'sim' CHECK (price_source IN ('live', 'sim')),"             \
  " commission_cents BIGINT NOT NULL DEFAULT 0 CHECK (commission_cents >= 0),"                     \
  " dashboard_public BIGINT NOT NULL DEFAULT 0 CHECK (dashboard_public IN (0, 1)),"                \
  " hours_policy TEXT NOT NULL DEFAULT 'last_price'"                                               \
  "  CHECK (hours_policy IN ('open_only', 'last_price')),"                                         \
  " season_started_at BIGINT NOT NULL,"                                                            \
  " updated_at BIGINT NOT NULL);"                                                                  \
  "CREATE TABLE market_accounts ("                                                                 \
  " guild_id BIGINT NOT NULL,"                                                                     \
  " season BIGINT NOT NULL,"                                                                       \
  " user_id BIGINT NOT NULL,"                                                                      \
  " cash_cents BIGINT NOT NULL CHECK (cash_cents >= 0),"                                           \
  " initial_cents BIGINT NOT NULL CHECK (initial_cents >= 0),"                                     \
  " last_value_cents BIGINT NOT NULL,"                                                             \
  " created_at BIGINT NOT NULL,"                                                                   \
  " PRIMARY KEY (guild_id, season, user_id));"                                                     \
  "CREATE INDEX market_accounts_user ON market_accounts (user_id);"                                \
  "CREATE INDEX market_accounts_value ON market_accounts (guild_id, season, last_value_cents);"    \
  "CREATE TABLE market_holdings ("                                                                 \
  " guild_id BIGINT NOT NULL,"                                                                     \
  " season BIGINT NOT NULL,"                                                                       \
  " user_id BIGINT NOT NULL,"                                                                      \
  " symbol TEXT NOT NULL,"                                                                         \
  " shares BIGINT NOT NULL CHECK (shares >= 0),"                                                   \
  " cost_cents BIGINT NOT NULL CHECK (cost_cents >= 0),"                                           \
  " PRIMARY KEY (guild_id, season, user_id, symbol));"                                             \
  "CREATE INDEX market_holdings_user ON market_holdings (user_id);"                                \
  "CREATE INDEX market_holdings_symbol ON market_holdings (symbol);"                               \
  "CREATE TABLE market_history ("                                                                  \
  " guild_id BIGINT NOT NULL,"                                                                     \
  " season BIGINT NOT NULL,"                                                                       \
  " user_id BIGINT NOT NULL,"                                                                      \
  " day BIGINT NOT NULL,"                                                                          \
  " value_cents BIGINT NOT NULL,"                                                                  \
  " created_at BIGINT NOT NULL,"                                                                   \
  " PRIMARY KEY (guild_id, season, user_id, day));"                                                \
  "CREATE INDEX market_history_user ON market_history (user_id);"                                  \
  "CREATE INDEX market_history_day ON market_history (day);"                                       \
  "CREATE TABLE market_last_price ("                                                               \
  " symbol TEXT PRIMARY KEY,"                                                                      \
  " price_micro BIGINT NOT NULL CHECK (price_micro > 0),"                                          \
  " prev_close_micro BIGINT NOT NULL DEFAULT 0,"                                                   \
  " source TEXT NOT NULL,"                                                                         \
  " quote_time_ms BIGINT NOT NULL,"                                                                \
  " fetched_ms BIGINT NOT NULL);"

/* The trade audit trail; only its id column differs between backends. */
#define MARKET_V2_TX(id_column)                                                                    \
  "CREATE TABLE market_transactions (" id_column ","                                               \
  " guild_id BIGINT NOT NULL,"                                                                     \
  " season BIGINT NOT NULL,"                                                                       \
  " user_id BIGINT NOT NULL,"                                                                      \
  " side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),"                                           \
  " symbol TEXT NOT NULL,"                                                                         \
  " shares BIGINT NOT NULL CHECK (shares > 0),"                                                    \
  " price_micro BIGINT NOT NULL CHECK (price_micro > 0),"                                          \
  " amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),"                                       \
  " commission_cents BIGINT NOT NULL CHECK (commission_cents >= 0),"                               \
  " cash_before BIGINT NOT NULL CHECK (cash_before >= 0),"                                         \
  " cash_after BIGINT NOT NULL CHECK (cash_after >= 0),"                                           \
  " realised_cents BIGINT NOT NULL DEFAULT 0,"                                                     \
  " price_source TEXT NOT NULL CHECK (price_source IN ('live', 'sim')),"                           \
  " price_time_ms BIGINT NOT NULL,"                                                                \
  " created_at BIGINT NOT NULL,"                                                                   \
  " idem_key TEXT NOT NULL UNIQUE);"                                                               \
  "CREATE INDEX market_transactions_account"                                                       \
  " ON market_transactions (guild_id, season, user_id, id);"                                       \
  "CREATE INDEX market_transactions_user ON market_transactions (user_id);"

/* v4, per-guild and per-user settings (src/ops/settings.c): the value as
 * the text a user types, NULL once reset (kept so that processes
 * re-reading changed rows see the reset); scope_id is the guild or the
 * user, as the setting's key says.  Rows are found by updated_at when
 * other processes re-read what changed.  Per-guild prefixes, kept in kv
 * until now, become the setting commands.prefix (set_by 0: unknown). */
#define SETTINGS_V4                                                                                \
  "CREATE TABLE settings ("                                                                        \
  " scope_id BIGINT NOT NULL,"                                                                     \
  " key TEXT NOT NULL,"                                                                            \
  " value TEXT,"                                                                                   \
  " set_by BIGINT NOT NULL,"                                                                       \
  " updated_at BIGINT NOT NULL,"                                                                   \
  " PRIMARY KEY (scope_id, key));"                                                                 \
  "CREATE INDEX settings_updated ON settings (updated_at);"

/* v5, the economy (src/modules/economy/ledger.c): coin balances per user
 * across every guild, an audit row per balance change (who, what, why,
 * before, after) keyed by the interaction that caused it, versioned Terms
 * of Service with each user's acceptances, the welcome bonus as a row
 * unique per user (so it is paid once whatever is clicked), the daily
 * reward's last claim, bets whose outcome is fixed when they are placed
 * (a pending bet is settled by whichever process finds it), and polls
 * with one vote per user.  CHECKs keep balances from going negative and
 * make an audit row's arithmetic impossible to get wrong. */
#define ECONOMY_V5(id_column)                                                                      \
  "CREATE TABLE economy_balances ("                                                                \
  " user_id BIGINT PRIMARY KEY,"                                                                   \
  " balance BIGINT NOT NULL CHECK (balance >= 0),"                                                 \
  " name TEXT NOT NULL DEFAULT '',"                                                                \
  " updated_at BIGINT NOT NULL);"                                                                  \
  "CREATE INDEX economy_balances_rank ON economy_balances (balance, user_id);"                      \
  "CREATE TABLE economy_audit (" id_column ","                                                     \
  " user_id BIGINT NOT NULL,"                                                                      \
  " actor_id BIGINT NOT NULL,"                                                                     \
  " kind TEXT NOT NULL"                                                                            \
  "  CHECK (kind IN ('bonus', 'daily', 'pay', 'grant', 'take', 'bet', 'win')),"                     \
  " amount BIGINT NOT NULL,"                                                                       \
  " balance_before BIGINT NOT NULL CHECK (balance_before >= 0),"                                   \
  " balance_after BIGINT NOT NULL CHECK (balance_after >= 0),"                                     \
  " other_id BIGINT NOT NULL DEFAULT 0,"                                                           \
  " reason TEXT NOT NULL DEFAULT '',"                                                              \
  " idem_key TEXT NOT NULL,"                                                                       \
  " created_at BIGINT NOT NULL,"                                                                   \
  " CHECK (balance_after = balance_before + amount),"                                              \
  " UNIQUE (idem_key, user_id));"                                                                  \
  "CREATE INDEX economy_audit_user ON economy_audit (user_id, id);"                                \
  "CREATE INDEX economy_audit_created ON economy_audit (created_at);"                              \
  "CREATE TABLE economy_tos ("                                                                     \
  " version BIGINT PRIMARY KEY CHECK (version >= 1),"                                              \
  " body TEXT NOT NULL,"                                                                           \
  " published_by BIGINT NOT NULL,"                                                                 \
  " published_at BIGINT NOT NULL);"                                                                \
  "CREATE TABLE economy_tos_accept ("                                                              \
  " user_id BIGINT NOT NULL,"                                                                      \
  " version BIGINT NOT NULL,"                                                                      \
  " accepted_at BIGINT NOT NULL,"                                                                  \
  " PRIMARY KEY (user_id, version));"                                                              \
  "CREATE TABLE economy_bonus ("                                                                   \
  " user_id BIGINT PRIMARY KEY,"                                                                   \
  " amount BIGINT NOT NULL CHECK (amount >= 0),"                                                   \
  " version BIGINT NOT NULL,"                                                                      \
  " granted_at BIGINT NOT NULL);"                                                                  \
  "CREATE TABLE economy_daily ("                                                                   \
  " user_id BIGINT PRIMARY KEY,"                                                                   \
  " last_ms BIGINT NOT NULL,"                                                                      \
  " streak BIGINT NOT NULL DEFAULT 1 CHECK (streak >= 1));"                                        \
  "CREATE TABLE economy_bets (" id_column ","                                                      \
  " user_id BIGINT NOT NULL,"                                                                      \
  " game TEXT NOT NULL,"                                                                           \
  " bet TEXT NOT NULL,"                                                                            \
  " stake BIGINT NOT NULL CHECK (stake > 0),"                                                      \
  " outcome TEXT NOT NULL,"                                                                        \
  " payout BIGINT NOT NULL CHECK (payout >= 0),"                                                   \
  " state TEXT NOT NULL CHECK (state IN ('pending', 'settled')),"                                  \
  " idem_key TEXT NOT NULL UNIQUE,"                                                                \
  " created_at BIGINT NOT NULL,"                                                                   \
  " settled_at BIGINT NOT NULL DEFAULT 0);"                                                        \
  "CREATE INDEX economy_bets_state ON economy_bets (state, created_at);"                            \
  "CREATE INDEX economy_bets_user ON economy_bets (user_id);"                                       \
  "CREATE TABLE economy_polls (" id_column ","                                                     \
  " guild_id BIGINT NOT NULL,"                                                                     \
  " channel_id BIGINT NOT NULL,"                                                                   \
  " creator_id BIGINT NOT NULL,"                                                                   \
  " question TEXT NOT NULL,"                                                                       \
  " options TEXT NOT NULL,"                                                                        \
  " created_at BIGINT NOT NULL,"                                                                   \
  " version BIGINT NOT NULL DEFAULT 0,"                                                            \
  " closed BIGINT NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)));"                                   \
  "CREATE INDEX economy_polls_guild ON economy_polls (guild_id);"                                  \
  "CREATE INDEX economy_polls_creator ON economy_polls (creator_id);"                              \
  "CREATE TABLE economy_poll_votes ("                                                              \
  " poll_id BIGINT NOT NULL,"                                                                      \
  " user_id BIGINT NOT NULL,"                                                                      \
  " choice BIGINT NOT NULL CHECK (choice >= 0),"                                                   \
  " voted_at BIGINT NOT NULL,"                                                                     \
  " PRIMARY KEY (poll_id, user_id));"                                                              \
  "CREATE INDEX economy_poll_votes_user ON economy_poll_votes (user_id);"

const souk__migration_t souk__migrations[] = {
    {1, "kv and idempotency",
     "CREATE TABLE kv ("
     " namespace TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " value BLOB,"
     " updated_at BIGINT NOT NULL,"
     " PRIMARY KEY (namespace, key));"
     "CREATE TABLE idempotency ("
     " key TEXT PRIMARY KEY,"
     " created_at BIGINT NOT NULL);"
     "CREATE INDEX idempotency_created ON idempotency (created_at);",
     "CREATE TABLE kv ("
     " namespace TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " value BYTEA,"
     " updated_at BIGINT NOT NULL,"
     " PRIMARY KEY (namespace, key));"
     "CREATE TABLE idempotency ("
     " key TEXT PRIMARY KEY,"
     " created_at BIGINT NOT NULL);"
     "CREATE INDEX idempotency_created ON idempotency (created_at);"},
    {2, "market", MARKET_V2_COMMON MARKET_V2_TX("id INTEGER PRIMARY KEY AUTOINCREMENT"),
     MARKET_V2_COMMON MARKET_V2_TX("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")},
    /* Command usage per hour and per day (src/ops/usage.c).  guild_id 0 is a
     * DM or the console. */
    {3, "usage analytics",
     "CREATE TABLE usage ("
     " period TEXT NOT NULL,"
     " start_ms BIGINT NOT NULL,"
     " command TEXT NOT NULL,"
     " guild_id BIGINT NOT NULL,"
     " user_id BIGINT NOT NULL,"
     " calls BIGINT NOT NULL,"
     " errors BIGINT NOT NULL,"
     " refused BIGINT NOT NULL,"
     " latency_ms_sum BIGINT NOT NULL,"
     " latency_ms_max BIGINT NOT NULL,"
     " PRIMARY KEY (period, start_ms, command, guild_id, user_id));"
     "CREATE INDEX usage_start ON usage (period, start_ms);",
     NULL},
    {4, "settings",
     SETTINGS_V4 "INSERT INTO settings (scope_id, key, value, set_by, updated_at)"
                 " SELECT CAST(key AS BIGINT), 'commands.prefix', CAST(value AS TEXT), 0, updated_at"
                 " FROM kv WHERE namespace = 'prefix' AND value IS NOT NULL;"
                 "DELETE FROM kv WHERE namespace = 'prefix';",
     SETTINGS_V4 "INSERT INTO settings (scope_id, key, value, set_by, updated_at)"
                 " SELECT CAST(key AS BIGINT), 'commands.prefix', convert_from(value, 'UTF8'), 0,"
                 " updated_at FROM kv WHERE namespace = 'prefix' AND value IS NOT NULL;"
                 "DELETE FROM kv WHERE namespace = 'prefix';"},
    {5, "economy", ECONOMY_V5("id INTEGER PRIMARY KEY AUTOINCREMENT"),
     ECONOMY_V5("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")},
    /* SkyBlock (src/modules/skyblock/sb_db.c): the auctions alerted, so
     * the sniper's dedupe survives a restart (pruned by age), the users'
     * alert subscriptions with the channel they subscribed in (a refused
     * DM is explained there) and whether they are paused, and the guilds
     * that set sniper settings (their alert channels are read from the
     * settings at start).  IF NOT EXISTS: a store rolled back to an earlier
     * version by hand (tests do) migrates forward again. */
    {6, "skyblock",
     "CREATE TABLE IF NOT EXISTS skyblock_alerts ("
     " uuid TEXT PRIMARY KEY,"
     " item_key TEXT NOT NULL,"
     " attrs TEXT NOT NULL,"
     " seller TEXT NOT NULL,"
     " unit_price BIGINT NOT NULL CHECK (unit_price > 0),"
     " at_ms BIGINT NOT NULL);"
     "CREATE INDEX IF NOT EXISTS skyblock_alerts_at ON skyblock_alerts (at_ms);"
     "CREATE TABLE IF NOT EXISTS skyblock_watch ("
     " user_id BIGINT NOT NULL,"
     " query TEXT NOT NULL,"
     " guild_id BIGINT NOT NULL,"
     " channel_id BIGINT NOT NULL,"
     " min_profit BIGINT NOT NULL CHECK (min_profit >= 0),"
     " max_price BIGINT NOT NULL CHECK (max_price >= 0),"
     " paused BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),"
     " created_at BIGINT NOT NULL,"
     " PRIMARY KEY (user_id, query));"
     "CREATE INDEX IF NOT EXISTS skyblock_watch_guild ON skyblock_watch (guild_id);"
     "CREATE TABLE IF NOT EXISTS skyblock_guilds ("
     " guild_id BIGINT PRIMARY KEY,"
     " updated_at BIGINT NOT NULL);",
     NULL},
    /* The cluster (src/ops/cluster.c): per lease name, the newest fencing
     * token a write was made under (souk_db_fence), and who holds the
     * PostgreSQL advisory lock (row "pg_lease"); the sequence hands the
     * advisory lock's tokens out.  SQLite has no sequences and needs
     * none: its lease comes from Redis or from no one. */
    {7, "cluster",
     "CREATE TABLE IF NOT EXISTS cluster_fence ("
     " name TEXT PRIMARY KEY,"
     " token BIGINT NOT NULL,"
     " holder TEXT,"
     " updated_at BIGINT NOT NULL);",
     "CREATE TABLE IF NOT EXISTS cluster_fence ("
     " name TEXT PRIMARY KEY,"
     " token BIGINT NOT NULL,"
     " holder TEXT,"
     " updated_at BIGINT NOT NULL);"
     "CREATE SEQUENCE IF NOT EXISTS cluster_fence_seq;"},
};

const int souk__migrations_n = (int)(sizeof souk__migrations / sizeof *souk__migrations);
