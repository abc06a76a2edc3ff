/* The Market Sim's web dashboard: read-only, server-rendered HTML pages
 * mounted on the embedded HTTP server (souk/httpd.h) through the market
 * module's .routes table.
 *
 *   GET /market/prices                        the price cache's last prices
 *   GET /market/<guild_id>[?page=N]           the current season's leaderboard
 *   GET /market/<guild_id>/user/<user_id>     a portfolio: holdings, chart, trades
 *   GET /market/static/style.css              the pages' stylesheet
 *
 * A guild's pages answer 404, exactly like an unknown guild, unless the
 * guild's admins turned dashboard_public on.  Every page is read on the
 * worker pool (souk_store_read_async) and answered from the done callback,
 * so no SQL runs on the loop thread.  Leaderboards are ranked once per guild
 * and kept for 10 s (the guild's settings are still read on every request,
 * so making it private or starting a season takes effect at once). */
#ifndef MARKET_DASHBOARD_H
#define MARKET_DASHBOARD_H

#include "souk/httpd.h"

/** The dashboard's routes (a zero-terminated table) for the market
 * module's .routes. */
extern const souk_route_t market_dashboard_routes[];

/** Drop the rankings the dashboard keeps for a few seconds (each guild's
 * whole leaderboard, so its pages are cut from memory).  Optional: call it
 * from the module's shutdown to release that memory; loop thread only. */
void market_dashboard_flush(void);

#endif
