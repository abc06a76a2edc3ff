/* The market's commands and components, as Discord and /help see them:
 * names, options, permissions and the handler of each (cmd_*.c). */
#include "cmd_int.h"

#define OPT_SYMBOL                                                                                 \
  {                                                                                                \
    .name = "symbol", .description = "Stock symbol, e.g. AAPL", .type = SOUK_OPT_STRING,           \
    .required = true, .autocomplete = true, .min_length = 1, .max_length = MARKET_SYMBOL_MAX       \
  }

static const souk_cmd_option_t opt_buy[] = {
    OPT_SYMBOL,
    {.name = "shares",
     .description = "Whole shares to buy",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 1000000000000LL)},
    {.name = "amount",
     .description = "Or a dollar amount to spend, e.g. 1500 or $1,500.50",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {0},
};
static const souk_cmd_option_t opt_sell[] = {
    OPT_SYMBOL,
    {.name = "shares",
     .description = "Whole shares to sell",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 1000000000000LL)},
    {.name = "amount",
     .description = "Or a dollar amount's worth to sell",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {.name = "all", .description = "Or sell every share", .type = SOUK_OPT_BOOLEAN},
    {0},
};
static const souk_cmd_option_t opt_symbol[] = {OPT_SYMBOL, {0}};
static const souk_cmd_option_t opt_user[] = {
    {.name = "user", .description = "Whose portfolio (default: yours)", .type = SOUK_OPT_USER},
    {0},
};
static const souk_cmd_option_t opt_page[] = {
    {.name = "page",
     .description = "Page (default 1)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 100000)},
    {0},
};
static const souk_cmd_choice_t by_choices[] = {{"total value", "value"}, {"ROI", "roi"}, {NULL}};
static const souk_cmd_option_t opt_lb[] = {
    {.name = "by",
     .description = "Rank by total value or ROI",
     .type = SOUK_OPT_STRING,
     .choices = by_choices},
    {.name = "page",
     .description = "Page (default 1)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, MARKET_LB_MAX_PAGE)},
    {0},
};
static const souk_cmd_choice_t onoff[] = {{"on", "on"}, {"off", "off"}, {NULL}};
static const souk_cmd_option_t opt_dash[] = {
    {.name = "state",
     .description = "on: public pages; off: private",
     .type = SOUK_OPT_STRING,
     .required = true,
     .choices = onoff},
    {0},
};
static const souk_cmd_choice_t hours_choices[] = {{"only while the NYSE is open", "open_only"},
                                                  {"any time, at the last price", "last_price"},
                                                  {NULL}};
static const souk_cmd_option_t opt_set[] = {
    {.name = "start_cash",
     .description = "Cash of new accounts, e.g. $1,000,000",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {.name = "commission",
     .description = "Commission per trade in dollars, e.g. 1.50",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {.name = "hours",
     .description = "When trades are allowed",
     .type = SOUK_OPT_STRING,
     .choices = hours_choices},
    {0},
};
static const souk_cmd_choice_t src_choices[] = {
    {"simulated market", "sim"}, {"live prices", "live"}, {NULL}};
static const souk_cmd_option_t opt_reset[] = {
    {.name = "source",
     .description = "Price source of the new season (default: the bot's)",
     .type = SOUK_OPT_STRING,
     .choices = src_choices},
    {0},
};

static const souk_command_t market_subs[] = {
    {.name = "settings",
     .description = "This server's game settings",
     .handler = market_cmd_settings},
    {.name = "set",
     .description = "Change starting cash, commission or trading hours",
     .options = opt_set,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = market_cmd_set},
    {.name = "season-reset",
     .description = "Start a new season (asks to confirm)",
     .options = opt_reset,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = market_cmd_season_reset},
    {.name = "dashboard",
     .description = "Make this server's web dashboard public or private",
     .options = opt_dash,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = market_cmd_dashboard},
    {.name = "daily-update",
     .description = "Take today's portfolio snapshot now (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = market_cmd_daily_update},
    {.name = "flushcache",
     .description = "Save the price cache to the store now (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = market_cmd_flushcache},
    {.name = "clearcache",
     .description = "Empty the in-memory price cache (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = market_cmd_clearcache},
    {.name = "reloadcache",
     .description = "Load the saved prices into the cache (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = market_cmd_reloadcache},
    {.name = "cache",
     .description = "Price cache statistics (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = market_cmd_cache},
    {0},
};

static const char *const buy_ex[] = {"/buy symbol:AAPL shares:10", "/buy symbol:MSFT amount:$5,000",
                                     NULL};
static const char *const sell_ex[] = {"/sell symbol:AAPL shares:5", "/sell symbol:AAPL all:true",
                                      NULL};
static const char *const market_ex[] = {"/market settings", "/market season-reset source:sim",
                                        "/market dashboard state:on", NULL};

const souk_command_t market_commands[] = {
    {.name = "buy",
     .description = "Buy shares with your game cash",
     .category = "Market",
     .usage = buy_ex,
     .options = opt_buy,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_buy,
     .autocomplete = market_complete_symbol},
    {.name = "sell",
     .description = "Sell shares you hold",
     .category = "Market",
     .usage = sell_ex,
     .options = opt_sell,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_sell,
     .autocomplete = market_complete_symbol},
    {.name = "portfolio",
     .description = "Cash, holdings, value and ROI",
     .category = "Market",
     .options = opt_user,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_portfolio},
    {.name = "history",
     .description = "Your recent trades",
     .category = "Market",
     .options = opt_page,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_history},
    {.name = "price",
     .description = "A stock's current price",
     .category = "Market",
     .options = opt_symbol,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_price,
     .autocomplete = market_complete_symbol},
    {.name = "quote",
     .description = "A stock's quote: price, change, source and time",
     .category = "Market",
     .options = opt_symbol,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_quote,
     .autocomplete = market_complete_symbol},
    {.name = "leaderboard",
     .description = "The season's ranking by value or ROI",
     .category = "Market",
     .options = opt_lb,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = market_cmd_leaderboard},
    {.name = "market",
     .description = "The market game's settings and seasons",
     .category = "Market",
     .usage = market_ex,
     .flags = SOUK_CMD_GUILD_ONLY,
     .subcommands = market_subs},
    {0},
};

/* The Python seed bot's names for what souk files under /market, so
 * people who type them (under the server's prefix) get the command they
 * mean.  The seed's owner commands were daily_update, flushcache,
 * clearcache and reloadcache; it spelt names in snake_case, so souk's other
 * hyphenated name, season-reset, gets season_reset too.  The game's own
 * commands (buy, sell, portfolio, history, price, quote, leaderboard) have
 * the same names in both. */
const souk_cmd_alias_t market_aliases[] = {
    {"daily_update", "market daily-update"}, {"flushcache", "market flushcache"},
    {"clearcache", "market clearcache"},     {"reloadcache", "market reloadcache"},
    {"season_reset", "market season-reset"}, {0},
};

const souk_cmd_component_t market_components[] = {
    {MARKET_LB_PREFIX, market_press_leaderboard},
    {MARKET_RESET_PREFIX, market_press_season_reset},
    {0},
};
