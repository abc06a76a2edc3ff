/* The SkyBlock engine; see sb_engine.h. */
#include "sb_engine.h"

#include "item.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A new auction or sale waiting for its item: the record's index in the
 * page and what decoding found. */
typedef struct fresh {
  uint32_t idx;
  int rc;
  char key[128], attrs[128], name[96];
  uint32_t count;
} fresh_t;

typedef struct job {
  sb_engine_t *e;
  sb_req_kind_t kind;
  int page;
  uint32_t sweep;
  sb_page_t pg;
  int rc;
  fresh_t *fr;
  size_t nfr;
  uint64_t arrived_ns;
  uint64_t t_parsed, t_looked; /* when steps 1 and 2 ended */
  unsigned chunks_left;        /* step 3's pieces still on the pool */
  sb_engine_done_cb done;
  void *ud;
} job_t;

/* A piece of step 3: new auctions [from, to) of a job. */
typedef struct chunk {
  job_t *j;
  size_t from, to;
} chunk_t;

/* Step 3 is split in pieces of at least this many auctions, at most
 * DECODE_PIECES of them, so a page with many new auctions (page 0 after a
 * refresh) is decoded on several pool threads at once. */
#define DECODE_PIECE  48
#define DECODE_PIECES 4

/* A listing waiting for the first complete sweep to be judged. */
typedef struct pending {
  sb_uuid_t uuid;
  char name[96];
} pending_t;

struct sb_engine {
  sb_mkts_t *m;
  bool primed; /* a complete sweep was applied since start */
  pending_t *pend;
  size_t npend, cappend;
  sb_dedupe_t *d;
  sb_sniper_conf_t sc;
  sb_engine_hooks_t h;
  sb_engine_stats_t st;
  unsigned busy;
  uint64_t (*now_ns)(void);
  /* Decoders for the thread pool, taken and given back under the lock. */
  pthread_mutex_t lock;
  sb_decoder_t **decoders;
  size_t ndec, capdec;
};

static uint64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

sb_engine_t *sb_engine_new(const sb_mkts_conf_t *mc, const sb_sniper_conf_t *sc,
                           const sb_engine_hooks_t *hooks) {
  sb_engine_t *e = souk_calloc(1, sizeof *e);
  e->m = sb_mkts_new(mc);
  e->sc = *sc;
  e->d = sb_dedupe_new(sc->dedupe_max, sc->dedupe_ttl_ms);
  if (hooks) e->h = *hooks;
  e->now_ns = real_ns;
  pthread_mutex_init(&e->lock, NULL);
  return e;
}

void sb_engine_free(sb_engine_t *e) {
  if (!e) return;
  SOUK_ASSERT(e->busy == 0);
  for (size_t i = 0; i < e->ndec; i++)
    sb_decoder_free(e->decoders[i]);
  souk_free(e->decoders);
  souk_free(e->pend);
  pthread_mutex_destroy(&e->lock);
  sb_dedupe_free(e->d);
  sb_mkts_free(e->m);
  souk_free(e);
}

unsigned sb_engine_busy(const sb_engine_t *e) { return e->busy; }
sb_mkts_t *sb_engine_store(sb_engine_t *e) { return e->m; }
sb_dedupe_t *sb_engine_dedupe(sb_engine_t *e) { return e->d; }
sb_sniper_conf_t *sb_engine_sniper(sb_engine_t *e) { return &e->sc; }
void sb_engine_stats(const sb_engine_t *e, sb_engine_stats_t *out) { *out = e->st; }
void sb_engine_set_clock(sb_engine_t *e, uint64_t (*now_ns)(void)) {
  e->now_ns = now_ns ? now_ns : real_ns;
}

static sb_decoder_t *dec_take(sb_engine_t *e) {
  pthread_mutex_lock(&e->lock);
  sb_decoder_t *d = e->ndec ? e->decoders[--e->ndec] : NULL;
  pthread_mutex_unlock(&e->lock);
  return d ? d : sb_decoder_new();
}

static void dec_give(sb_engine_t *e, sb_decoder_t *d) {
  pthread_mutex_lock(&e->lock);
  if (e->ndec == e->capdec) {
    e->capdec = e->capdec ? e->capdec * 2 : 4;
    e->decoders = souk_reallocarray(e->decoders, e->capdec, sizeof *e->decoders);
  }
  e->decoders[e->ndec++] = d;
  pthread_mutex_unlock(&e->lock);
}

static void on_closed(void *ud, sb_summary_t *s) {
  sb_engine_t *e = ud;
  if (e->h.hour_closed)
    e->h.hour_closed(e->h.ud, s);
  else
    sb_summary_free(s);
}

/* ---- step 2: look up (loop) -------------------------------------------------- */

static void fresh_push(job_t *j, uint32_t idx) {
  if (!j->fr) j->fr = souk_calloc(j->pg.n ? j->pg.n : 1, sizeof *j->fr);
  j->fr[j->nfr++].idx = idx;
}

static void lookup(job_t *j) {
  sb_engine_t *e = j->e;
  sb_page_t *pg = &j->pg;
  e->st.auctions_bad += pg->bad;
  /* Data time moves with every page: hours close here. */
  sb_mkts_advance(e->m, pg->last_updated, on_closed, e);
  if (j->kind == SB_REQ_ENDED) {
    e->st.ended_pages++;
    for (size_t i = 0; i < pg->n; i++) {
      const sb_ended_t *s = &pg->e[i];
      if (sb_mkts_sale_known(e->m, &s->auction)) {
        sb_mkts_live_remove(e->m, &s->auction);
        continue;
      }
      /* A sale of a listing we watched needs no decoding: its market and
       * stack size are known. */
      const sb_live_t *l = sb_mkts_live_find(e->m, &s->auction);
      if (l) {
        if (sb_mkts_sale_add(e->m, l->mid, &s->auction, s->ts_ms, s->price, l->count,
                             sb_uuid_h64(&s->seller), sb_uuid_h64(&s->buyer)))
          e->st.sales_new++;
        sb_mkts_live_remove(e->m, &s->auction);
      } else {
        fresh_push(j, (uint32_t)i);
      }
    }
    return;
  }
  e->st.pages++;
  e->st.auctions_seen += pg->n;
  e->st.rows_sweep += pg->n;
  for (size_t i = 0; i < pg->n; i++) {
    const sb_listing_t *l = &pg->l[i];
    const sb_live_t *known = sb_mkts_live_find(e->m, &l->uuid);
    if (known)
      sb_mkts_live_touch(e->m, known, j->sweep, l->price);
    else
      fresh_push(j, (uint32_t)i);
  }
}

/* ---- step 3: decode (pool) --------------------------------------------------- */

static void decode_range(job_t *j, sb_decoder_t *d, size_t from, size_t to) {
  sb_item_t it;
  for (size_t k = from; k < to; k++) {
    fresh_t *f = &j->fr[k];
    int tok = j->kind == SB_REQ_ENDED ? j->pg.e[f->idx].item_tok : j->pg.l[f->idx].item_tok;
    f->rc = sb_item_decode_json(d, &j->pg.j, tok, &it);
    if (f->rc) continue;
    memcpy(f->key, it.key, sizeof f->key);
    memcpy(f->attrs, it.attrs, sizeof f->attrs);
    memcpy(f->name, it.name, sizeof f->name);
    f->count = it.count ? it.count : 1;
  }
}

static void decode(job_t *j, sb_decoder_t *d) { decode_range(j, d, 0, j->nfr); }

/* ---- step 4: apply and judge (loop) ------------------------------------------ */

/* Judge one new live listing (found again by uuid: adds may have moved
 * the live array) and send its alert. */
static void judge(sb_engine_t *e, const sb_uuid_t *uuid, const char *name, int64_t now,
                  uint64_t arrived_ns) {
  const sb_live_t *l = sb_mkts_live_find(e->m, uuid);
  if (!l) return;
  sb_judgement_t jd;
  sb_verdict_t v = sb_snipe_judge(&e->sc, e->m, e->d, l, now, &jd);
  e->st.judged++;
  e->st.verdicts[v]++;
  if (v != SB_V_ALERT) return;
  const char *key = sb_mkts_key(e->m, l->mid), *attrs = sb_mkts_attrs(e->m, l->mid);
  sb_dedupe_record(e->d, &l->uuid, sb_market_hash(key, attrs), &l->seller, l->unit, now);
  sb_alert_t a = {.uuid = l->uuid,
                  .seller = l->seller,
                  .mid = l->mid,
                  .key = key,
                  .attrs = attrs,
                  .name = sb_mkts_name(e->m, l->mid),
                  .item_name = name,
                  .last_updated = now,
                  .j = jd};
  if (e->h.alert) e->h.alert(e->h.ud, &a);
  if (arrived_ns) {
    uint64_t ns = e->now_ns() - arrived_ns;
    e->st.last_alert_ns = ns;
    if (ns > e->st.max_alert_ns) e->st.max_alert_ns = ns;
  }
}

static void defer(sb_engine_t *e, const sb_uuid_t *uuid, const char *name) {
  if (e->npend == e->cappend) {
    e->cappend = e->cappend ? e->cappend * 2 : 256;
    e->pend = souk_reallocarray(e->pend, e->cappend, sizeof *e->pend);
  }
  pending_t *p = &e->pend[e->npend++];
  p->uuid = *uuid;
  snprintf(p->name, sizeof p->name, "%s", name);
}

static void apply(job_t *j) {
  sb_engine_t *e = j->e;
  /* Add every new listing of the page first, so each is judged against
   * the whole page's ladder. */
  for (size_t k = 0; k < j->nfr; k++) {
    fresh_t *f = &j->fr[k];
    if (f->rc) {
      e->st.auctions_bad++;
      continue;
    }
    uint32_t mid = sb_mkts_intern(e->m, f->key, f->attrs, f->name);
    if (j->kind == SB_REQ_ENDED) {
      const sb_ended_t *s = &j->pg.e[f->idx];
      if (sb_mkts_sale_add(e->m, mid, &s->auction, s->ts_ms, s->price, f->count,
                           sb_uuid_h64(&s->seller), sb_uuid_h64(&s->buyer)))
        e->st.sales_new++;
      continue;
    }
    e->st.auctions_new++;
    if (!sb_mkts_live_add(e->m, &j->pg.l[f->idx], mid, f->count, j->sweep)) f->rc = SOUK_EFULL;
  }
  if (j->kind == SB_REQ_ENDED) return;
  int64_t now = j->pg.last_updated;
  for (size_t k = 0; k < j->nfr; k++) {
    const fresh_t *f = &j->fr[k];
    if (f->rc) continue;
    const sb_listing_t *in = &j->pg.l[f->idx];
    /* Until a whole sweep has been seen since start, the ladders lack the
     * other pages' listings: young listings wait for it (old ones are
     * judged old at once, as they would be anyway). */
    if (!e->primed && in->bin && in->start_ms >= now - e->sc.max_listing_age_ms) {
      defer(e, &in->uuid, f->name);
      continue;
    }
    judge(e, &in->uuid, f->name, now, j->arrived_ns);
  }
}

static void job_free(job_t *j) {
  sb_page_free(&j->pg);
  souk_free(j->fr);
  souk_free(j);
}

static void finish(job_t *j) {
  sb_engine_t *e = j->e;
  e->busy--;
  if (j->rc) e->st.bad_pages++;
  if (j->done)
    j->done(j->ud, j->kind, j->sweep, j->page, j->rc, j->rc ? 0 : j->pg.last_updated,
            j->rc ? 0 : j->pg.total_pages);
  job_free(j);
}

/* ---- the asynchronous path ----------------------------------------------------- */

static void work_parse(void *ud) {
  job_t *j = ud;
  j->rc = sb_page_parse(&j->pg);
}

static void work_chunk(void *ud) {
  chunk_t *c = ud;
  sb_decoder_t *d = dec_take(c->j->e);
  decode_range(c->j, d, c->from, c->to);
  dec_give(c->j->e, d);
}

static void after_chunk(void *ud, int status) {
  chunk_t *c = ud;
  job_t *j = c->j;
  souk_free(c);
  if (status) j->rc = status;
  if (--j->chunks_left) return;
  sb_engine_t *e = j->e;
  uint64_t t = e->now_ns();
  e->st.last_decode_ns = t - j->t_looked;
  if (!j->rc) apply(j);
  e->st.last_apply_ns = e->now_ns() - t;
  finish(j);
}

static void after_parse(void *ud, int status) {
  job_t *j = ud;
  if (status) j->rc = status;
  if (j->rc) {
    finish(j);
    return;
  }
  sb_engine_t *e = j->e;
  j->t_parsed = e->now_ns();
  e->st.last_parse_ns = j->t_parsed - j->arrived_ns;
  lookup(j);
  j->t_looked = e->now_ns();
  e->st.last_lookup_ns = j->t_looked - j->t_parsed;
  if (!j->nfr) {
    finish(j);
    return;
  }
  size_t pieces = j->nfr / DECODE_PIECE;
  if (pieces < 1) pieces = 1;
  if (pieces > DECODE_PIECES) pieces = DECODE_PIECES;
  j->chunks_left = (unsigned)pieces;
  for (size_t p = 0; p < pieces; p++) {
    chunk_t *c = souk_calloc(1, sizeof *c);
    c->j = j;
    c->from = j->nfr * p / pieces;
    c->to = j->nfr * (p + 1) / pieces;
    if (souk_work_submit(work_chunk, after_chunk, c) != 0) {
      /* The pool refused: decode here rather than lose the page. */
      work_chunk(c);
      after_chunk(c, 0);
    }
  }
}

int sb_engine_submit(sb_engine_t *e, sb_req_kind_t kind, int page, uint32_t sweep, char *body,
                     size_t len, uint64_t arrived_ns, sb_engine_done_cb done, void *ud) {
  job_t *j = souk_calloc(1, sizeof *j);
  j->e = e;
  j->kind = kind;
  j->page = page;
  j->sweep = sweep;
  j->arrived_ns = arrived_ns ? arrived_ns : e->now_ns();
  j->done = done;
  j->ud = ud;
  sb_page_init(&j->pg, kind == SB_REQ_ENDED ? SB_PAGE_ENDED : SB_PAGE_AUCTIONS, body, len);
  int rc = souk_work_submit(work_parse, after_parse, j);
  if (rc) {
    j->pg.body = NULL; /* the caller keeps the body on failure */
    job_free(j);
    return rc;
  }
  e->busy++;
  return 0;
}

int sb_engine_ingest_sync(sb_engine_t *e, sb_req_kind_t kind, uint32_t sweep, char *body,
                          size_t len, int64_t *last_updated, int *total_pages) {
  job_t *j = souk_calloc(1, sizeof *j);
  j->e = e;
  j->kind = kind;
  j->sweep = sweep;
  sb_page_init(&j->pg, kind == SB_REQ_ENDED ? SB_PAGE_ENDED : SB_PAGE_AUCTIONS, body, len);
  e->busy++;
  j->rc = sb_page_parse(&j->pg);
  if (!j->rc) {
    lookup(j);
    if (j->nfr) {
      sb_decoder_t *d = dec_take(e);
      decode(j, d);
      dec_give(e, d);
      apply(j);
    }
  }
  int rc = j->rc;
  if (last_updated) *last_updated = rc ? 0 : j->pg.last_updated;
  if (total_pages) *total_pages = rc ? 0 : j->pg.total_pages;
  finish(j);
  return rc;
}

void sb_engine_sweep_end(sb_engine_t *e, uint32_t sweep, bool complete) {
  if (complete) {
    e->st.removed_unseen += sb_mkts_sweep_done(e->m, sweep);
    e->st.sweeps_done++;
    if (!e->primed) {
      /* The whole house is known now: judge what waited for it. */
      e->primed = true;
      sb_mkts_stats_t ms;
      sb_mkts_stats(e->m, &ms);
      for (size_t i = 0; i < e->npend; i++)
        judge(e, &e->pend[i].uuid, e->pend[i].name, ms.data_now, 0);
      souk_free(e->pend);
      e->pend = NULL;
      e->npend = e->cappend = 0;
    }
  }
  e->st.rows_sweep = 0;
}
