/* What the cluster (src/ops/cluster.c) needs of the store beyond
 * souk/store.h: the PostgreSQL advisory lock that holds the cluster's
 * lease when Redis is absent, and the newest fencing token a fenced write
 * was refused for.  Modules never include this file.
 *
 * The lock lives on a connection of its own, outside the pool: an advisory
 * lock belongs to a session, so it must stay on one connection for as long
 * as it is held, and it goes when that connection does (a process that
 * dies loses it at once; a host that vanishes loses it once the server's
 * TCP keepalives notice, about ten seconds).  The fencing token comes from
 * the sequence cluster_fence_seq (migration 7), which only grows.
 *
 * Threads: every souk__pglock_* call blocks (libpq) and belongs on a pool
 * thread; one call at a time per lock. */
#ifndef SOUK_STORE_LEASE_H
#define SOUK_STORE_LEASE_H

#include <stddef.h>
#include <stdint.h>

/** An advisory lock on its own connection (opaque). */
typedef struct souk__pglock souk__pglock_t;

/** A lock on the PostgreSQL database at url (a postgres:// URL, as
 * store.url), named key (the advisory lock's 64-bit number), connecting
 * within connect_timeout_ms.  Nothing connects yet.  url is copied. */
souk__pglock_t *souk__pglock_new(const char *url, int64_t connect_timeout_ms, int64_t key);
/** Connect if needed and try to take the lock without waiting.  0: taken
 * (or already held), *fence a new token from cluster_fence_seq, and
 * holder recorded as the lease's holder (cluster_fence row "pg_lease");
 * SOUK_EBUSY: another session holds it, and *who (cap bytes, may be NULL)
 * gets the holder it recorded; SOUK_ECONN or SOUK_ECLOSED: the server
 * cannot be reached (the connection is dropped, and with it any lock). */
int souk__pglock_try(souk__pglock_t *l, const char *holder, int64_t *fence, char *who, size_t cap);
/** Check that the session, and so the lock, is still there: 0, or
 * SOUK_ECLOSED (the connection is dropped: the lock is gone). */
int souk__pglock_check(souk__pglock_t *l);
/** Release the lock if held (the connection stays). */
void souk__pglock_release(souk__pglock_t *l);
/** Close the connection (releasing the lock) and free l; NULL is fine. */
void souk__pglock_free(souk__pglock_t *l);

/** The newest token that a refused souk_db_fence() found in the store, or
 * 0: the cluster polls it, gives its lease up, and takes the next one
 * above it.  Any thread. */
int64_t souk__store_fence_newest(void);

#endif
