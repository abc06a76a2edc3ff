/* /leaderboard and its page buttons: the season's ranking by value or ROI,
 * valued with one price snapshot taken on the loop. */
#include "cmd_int.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A page older than this gets a note and the current ranking. */
#define LB_STALE_MS (15 * 60 * 1000)
/* A button's snapshot minute is within a day of now. */
#define LB_TAG_WINDOW_MIN 1440

/* One page of a ranking. */
typedef struct lb_job {
  market_job_t base;
  market_snap_t snap;
  market_rank_by_t by;
  int64_t page;
  market_rank_t *ranks;
  size_t nranks, total;
  char (*names)[MARKET_NAME_MAX + 1]; /* the page's players' names, "" unknown */
  int64_t tag_season, tag_min; /* from a pressed button: its season and first minute */
  bool stale_note;
} lb_job_t;

static void lb_free(market_job_t *base) {
  lb_job_t *j = (lb_job_t *)base;
  souk_free(j->ranks);
  souk_free(j->names);
  market_snap_free(&j->snap);
  souk_free(j);
}

static lb_job_t *lb_new(souk_cmd_ctx_t *ctx) {
  lb_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, lb_free);
  return j;
}

static int lb_tx(souk_db_t *db, void *ud) {
  lb_job_t *j = ud;
  souk_free(j->ranks);
  souk_free(j->names);
  j->ranks = NULL;
  j->names = NULL;
  j->nranks = j->total = 0;
  int rc = market_settings_get(db, j->base.guild, &j->base.defaults, &j->base.set);
  if (rc) return rc;
  /* The snapshot was taken on the loop for both sources; use this
   * guild's. */
  j->snap.sim = j->base.set.source == MARKET_SRC_SIM;
  rc = market_leaderboard(db, j->base.guild, 0, j->by, market_snap_price, &j->snap,
                          (j->page - 1) * MARKET_LB_PAGE, MARKET_LB_PAGE, &j->ranks, &j->nranks,
                          &j->total);
  if (rc || !j->nranks) return rc;
  int64_t ids[MARKET_LB_PAGE];
  for (size_t i = 0; i < j->nranks; i++)
    ids[i] = j->ranks[i].user_id;
  j->names = souk_calloc(j->nranks, sizeof *j->names);
  return market_player_names(db, j->base.guild, ids, j->nranks, j->names);
}

static void lb_done(void *ud, int status) {
  lb_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  if (j->tag_season && j->tag_season != j->base.set.season) {
    souk_cmd_replyf(j->base.ctx,
                    "This leaderboard is from season %" PRId64 ", which has ended. Run "
                    "/leaderboard again for season %" PRId64 ".",
                    j->tag_season, j->base.set.season);
    lb_free(&j->base);
    return;
  }
  int64_t pages = j->total ? ((int64_t)j->total + MARKET_LB_PAGE - 1) / MARKET_LB_PAGE : 1;
  if (!j->total) {
    souk_cmd_replyf(j->base.ctx, "Nobody has traded in this season yet: be the first with /buy.");
    lb_free(&j->base);
    return;
  }
  if (j->page > pages) {
    if (pages == 1)
      souk_cmd_replyf(j->base.ctx, "There is only 1 page of the leaderboard.");
    else
      souk_cmd_replyf(j->base.ctx, "There are only %" PRId64 " pages of the leaderboard.", pages);
    lb_free(&j->base);
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  if (j->stale_note)
    souk_buf_puts(&b, "(That page was over 15 minutes old; this is the current ranking.)\n");
  for (size_t i = 0; i < j->nranks; i++) {
    const market_rank_t *r = &j->ranks[i];
    char v[MARKET_FMT_MAX], roi[MARKET_FMT_MAX];
    market_fmt_cents(r->value_cents, v, sizeof v);
    if (r->initial_cents > 0)
      market_fmt_change(r->value_cents, r->initial_cents, roi, sizeof roi);
    else
      market_fmt_bp(r->roi_bp, roi, sizeof roi);
    char who[MARKET_NAME_MD_MAX];
    market_name_md(j->names ? j->names[i] : NULL, r->user_id, who, sizeof who);
    souk_buf_printf(&b, "%" PRId64 ". %s %s (%s)\n", r->rank, who, v, roi);
  }
  char title[96], footer[160];
  snprintf(title, sizeof title, "Leaderboard by %s, season %" PRId64,
           j->by == MARKET_RANK_ROI ? "ROI" : "value", j->base.set.season);
  snprintf(footer, sizeof footer, "Page %" PRId64 " of %" PRId64 " - %zu traders%s", j->page, pages,
           j->total, j->base.set.source == MARKET_SRC_SIM ? " - simulated market" : "");
  int64_t tag_min = j->tag_min ? j->tag_min : (int64_t)(souk_unix_ms() / 60000);
  char prev_id[SOUK_CMD_CUSTOM_ID_MAX + 1], next_id[SOUK_CMD_CUSTOM_ID_MAX + 1], st[64];
  snprintf(st, sizeof st, "%" PRId64 ":%c:%" PRId64 ":%" PRId64, j->page > 1 ? j->page - 1 : 1,
           j->by == MARKET_RANK_ROI ? 'r' : 'v', j->base.set.season, tag_min);
  souk_cmd_custom_id(prev_id, sizeof prev_id, MARKET_LB_PREFIX, st);
  snprintf(st, sizeof st, "%" PRId64 ":%c:%" PRId64 ":%" PRId64,
           j->page < pages ? j->page + 1 : pages, j->by == MARKET_RANK_ROI ? 'r' : 'v',
           j->base.set.season, tag_min);
  souk_cmd_custom_id(next_id, sizeof next_id, MARKET_LB_PREFIX, st);
  souk_component_t c[2] = {
      {.custom_id = prev_id,
       .label = "\xe2\x97\x80",
       .style = SOUK_BUTTON_SECONDARY,
       .disabled = j->page <= 1},
      {.custom_id = next_id,
       .label = "\xe2\x96\xb6",
       .style = SOUK_BUTTON_SECONDARY,
       .disabled = j->page >= pages},
  };
  souk_embed_t e = {
      .title = title, .description = b.data, .color = MARKET_COLOR_INFO, .footer = footer};
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .components = c, .ncomponents = pages > 1 ? 2 : 0};
  if (j->base.ctx->kind == SOUK_CMD_KIND_COMPONENT)
    souk_cmd_update(j->base.ctx, &m);
  else
    souk_cmd_reply(j->base.ctx, &m);
  souk_buf_free(&b);
  lb_free(&j->base);
}

static void lb_start(lb_job_t *j) {
  /* Take the price snapshot on the loop (the cache is the loop's); the
   * transaction picks sim or live by the guild's settings. */
  market_snap_fill(&j->snap, MARKET_SRC_LIVE);
  market_job_run(&j->base, lb_tx, lb_done, false);
}

void market_cmd_leaderboard(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  lb_job_t *j = lb_new(ctx);
  const char *by = souk_cmd_arg_str(ctx->args, "by", "value");
  j->by = strcmp(by, "roi") == 0 ? MARKET_RANK_ROI : MARKET_RANK_VALUE;
  j->page = souk_cmd_arg_int(ctx->args, "page", 1);
  if (j->page < 1) j->page = 1;
  lb_start(j);
}

/* custom_id state: "<page>:<v|r>:<season>:<unix minute of the first page>". */
void market_press_leaderboard(souk_cmd_ctx_t *ctx) {
  long long page = 0, season = 0, minute = 0;
  char by = 0;
  int used = 0;
  if (!ctx->state ||
      sscanf(ctx->state, "%lld:%c:%lld:%lld%n", &page, &by, &season, &minute, &used) != 4 ||
      ctx->state[used] != '\0' || page < 1 || (by != 'v' && by != 'r') || ctx->guild_id == 0) {
    souk_cmd_replyf(ctx, "This leaderboard button is no longer valid; run /leaderboard again.");
    return;
  }
  if (!market_need_store(ctx)) return;
  lb_job_t *j = lb_new(ctx);
  j->page = page;
  j->by = by == 'r' ? MARKET_RANK_ROI : MARKET_RANK_VALUE;
  j->tag_season = season;
  j->tag_min = minute;
  /* The button's text comes from the client: a page beyond what the
   * command accepts (so (page - 1) * MARKET_LB_PAGE cannot overflow) or a
   * minute not within a day of now is an old or forged button, answered
   * like a stale one with the current first page. */
  int64_t now_min = (int64_t)(souk_unix_ms() / 60000);
  if (page > MARKET_LB_MAX_PAGE || minute < now_min - LB_TAG_WINDOW_MIN ||
      minute > now_min + LB_TAG_WINDOW_MIN) {
    j->page = 1;
    j->stale_note = true;
    j->tag_min = 0;
  } else if (now_min - minute > LB_STALE_MS / 60000) {
    j->stale_note = true;
    j->tag_min = 0; /* the new page starts a new snapshot tag */
  }
  lb_start(j);
}
