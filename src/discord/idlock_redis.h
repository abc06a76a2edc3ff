/* Identify slots through Redis: a souk__identify_lock_t backend (see
 * discord/idlock.h) for processes on different hosts that share one Redis.
 *
 * Every bucket has one key, <prefix>identify:<bucket>.  acquire(bucket)
 * takes the bucket's slot with an atomic
 *     SET <prefix>identify:<bucket> <owner-token> NX PX <interval>
 * and the key's expiry is the spacing: whoever sets it may IDENTIFY now, and
 * nobody else can for interval ms.  When the SET finds the key taken, the
 * backend reads its PTTL and tries again when it runs out (plus a little
 * jitter, so hosts waiting on one bucket do not all ask in the same
 * millisecond).  release() leaves the key alone; see idlock_redis.c.
 *
 * Redis is optional here too: while it cannot be reached (at start, after a
 * connection drops, or when a reply is later than 2 s) the backend hands
 * out slots as the in-process backend does, from its own record of when it
 * last granted each bucket, and logs the switch once.  A Redis outage thus
 * never stops the bot from connecting; during one, two hosts may IDENTIFY
 * in the same bucket within 5 s, which Discord answers with an op 9 that
 * the gateway handles by waiting and identifying again.
 *
 * Keys under a cache's prefix are also removed by a souk_cache_clear() of
 * "*"; the worst that does is one early IDENTIFY per bucket, answered by an
 * op 9 as above.
 *
 * Loop thread only; grants always come from the loop, never from inside
 * acquire() or release(). */
#ifndef SOUK_DISCORD_IDLOCK_REDIS_H
#define SOUK_DISCORD_IDLOCK_REDIS_H

#include "discord/idlock.h"

#include <stdint.h>

/** Create the Redis backend on souk_loop() and start connecting.  url is
 * redis://[[user]:password@]host[:port][/db] (cache.url's syntax);
 * key_prefix is put before every key (NULL: none), so deployments sharing
 * a server keep apart; interval_ms is the spacing of one bucket's
 * IDENTIFYs (0: SOUK_IDENTIFY_INTERVAL_MS).  url and key_prefix are copied.
 * Acquires made before the first connection attempt has ended wait for it
 * (at most about 2 s).  Returns 0 and fills *out, whose destroy op frees
 * everything, or SOUK_EINVAL (NULL argument) / SOUK_ECONFIG (bad URL,
 * logged): then *out is untouched and nothing is left allocated. */
int souk__identify_lock_redis(const char *url, const char *key_prefix, uint32_t interval_ms,
                             souk__identify_lock_t *out);

#endif
