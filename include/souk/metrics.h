/* The metrics registry: counters, gauges and histograms with labels,
 * rendered in the Prometheus text exposition format 0.0.4.
 *
 * A family is registered once by name, help text, type and label names (at
 * most SOUK_METRIC_MAX_LABELS of them, e.g. "route,status").  Each distinct
 * set of label values is one series; look the series up once and keep the
 * pointer, so that updating it on a hot path is a plain add.
 *
 * Threads: the registry is owned by the loop thread.  Registering, looking
 * up series and every update below run on the loop thread only and take no
 * locks.  The one exception is souk_counter_add_atomic(): a worker thread
 * may count through a series pointer the loop thread looked up for it (the
 * series must not be cleared meanwhile), and the scrape adds that atomic
 * part to the series' value.
 *
 * Collectors are callbacks run at scrape time, before rendering, that fill
 * gauges (and mirror counters kept elsewhere) from live state.  The
 * registry lives in the core so that every layer registers its own
 * families without reaching up: the core registers the process's and the
 * dispatcher's (souk__metrics_builtin_init), the HTTP server souk_httpd_*,
 * the cache souk_cache_*{backend}, operations souk_task_*{task} and
 * souk_errors_*, the Discord layer souk_gateway_*{shard} and souk_rest_*,
 * the program's wiring souk_commands_*{command}, souk_store_up and
 * souk_store_sqlite_memory_bytes, and a module its own souk_<module>_*
 * families from its init.
 *
 * Names: souk_<area>_<what>_<unit>, counters ending in _total, units in
 * base units (_seconds, _bytes).
 *
 * Ownership: families and series are owned by the registry and stay valid
 * until souk__metrics_shutdown() (series also until souk_metric_clear() of
 * their family).  Names, help and label values are copied. */
#ifndef SOUK_METRICS_H
#define SOUK_METRICS_H

#include "souk/buf.h"

#include <stddef.h>
#include <stdint.h>

/** Label names a family may have. */
#define SOUK_METRIC_MAX_LABELS 4
/** Series a family may hold; further label sets share one series that is
 * never rendered (so a bug cannot grow memory without bound), and the
 * family's overflow is counted in souk_metrics_dropped_series_total. */
#define SOUK_METRIC_MAX_SERIES 10000
/** Bucket bounds a histogram may have (the +Inf bucket is implied). */
#define SOUK_METRIC_MAX_BUCKETS 32
/** The Content-Type of souk__metrics_render()'s output. */
#define SOUK_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** The family's type, as shown on its # TYPE line. */
typedef enum souk_metric_type {
  SOUK_METRIC_COUNTER,
  SOUK_METRIC_GAUGE,
  SOUK_METRIC_HISTOGRAM,
} souk_metric_type_t;

/** A family of series (opaque). */
typedef struct souk_metric souk_metric_t;
/** One series of a family: one set of label values (opaque). */
typedef struct souk_series souk_series_t;

/** Register a counter.  name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels
 * is a comma-separated list of label names ("route,status") or NULL/"" for
 * none.  Registering the same name again with the same type and labels
 * returns the existing family; anything else that is invalid (bad name,
 * type clash, too many labels) is a programming error and asserts.  Never
 * returns NULL. */
souk_metric_t *souk_counter_new(const char *name, const char *help, const char *labels);
/** Register a gauge; as souk_counter_new. */
souk_metric_t *souk_gauge_new(const char *name, const char *help, const char *labels);
/** Register a histogram with n finite, strictly increasing upper bounds
 * (copied; the +Inf bucket is added).  The label "le" is reserved. */
souk_metric_t *souk_histogram_new(const char *name, const char *help, const char *labels,
                                  const double *bounds, size_t n);
/** Bounds for request latencies in seconds: 5 ms .. 10 s. */
extern const double souk_metric_latency_bounds[];
/** Number of entries of souk_metric_latency_bounds. */
extern const size_t souk_metric_latency_nbounds;

/** A registered family by name, or NULL. */
souk_metric_t *souk_metric_find(const char *name);

/** The series with these label values (one per label name, in order; NULL
 * for a family without labels), created on first use with value 0.  Never
 * returns NULL (see SOUK_METRIC_MAX_SERIES).  A NULL value is taken as "".
 * Values must be UTF-8 (they are escaped, not re-encoded) and of bounded
 * cardinality: never user input such as ids or free text. */
souk_series_t *souk_metric_series(souk_metric_t *m, const char *const *values);
/** Label values as an array literal: SOUK_LV("GET", "200"). */
#define SOUK_LV(...) ((const char *const[]){__VA_ARGS__})

/** Drop every series of m (pointers to them become invalid).  For
 * collectors that rebuild a family from live state on each scrape, so a
 * shard or route that went away disappears. */
void souk_metric_clear(souk_metric_t *m);

/** Add v (>= 0; negative values are ignored) to a counter series. */
void souk_counter_add(souk_series_t *s, double v);
/** Add 1 to a counter series. */
void souk_counter_inc(souk_series_t *s);
/** Add n to a counter series from any thread (relaxed atomic add). */
void souk_counter_add_atomic(souk_series_t *s, uint64_t n);
/** Set a counter to v: for collectors that mirror a count kept elsewhere. */
void souk_counter_set(souk_series_t *s, double v);
/** Set a gauge series. */
void souk_gauge_set(souk_series_t *s, double v);
/** Add v (may be negative) to a gauge series. */
void souk_gauge_add(souk_series_t *s, double v);
/** Record one observation in a histogram series. */
void souk_histogram_observe(souk_series_t *s, double v);
/** For collectors that mirror figures kept elsewhere: set the series lv
 * (as souk_metric_series) of the counter family called name to v, or do
 * nothing when no such family is registered. */
void souk_counter_set_named(const char *name, const char *const *lv, double v);
/** The same for a gauge family. */
void souk_gauge_set_named(const char *name, const char *const *lv, double v);
/** Current value of a counter or gauge series (the atomic part included);
 * a histogram's observation count. */
double souk_series_value(const souk_series_t *s);

/** A scrape-time callback: fill families from live state. */
typedef void (*souk_metrics_collect_cb)(void *ud);
/** Run fn(ud) before every render, in the order added.  0, or SOUK_EEXIST
 * if the same fn and ud are already registered. */
int souk_metrics_add_collector(souk_metrics_collect_cb fn, void *ud);
/** Forget a collector.  0 or SOUK_ENOTFOUND. */
int souk_metrics_remove_collector(souk_metrics_collect_cb fn, void *ud);

#endif
