/* A small intrusive hash map keyed by C strings, for the rate limiter's
 * buckets and the REST client's queues and statistics.
 *
 * Entries are embedded in the caller's structs (souk__smap_ent_t as a member)
 * so a lookup costs no allocation and removal needs no search.  The map owns
 * only its slot array; the caller owns every entry and the key text, which
 * must stay valid and unchanged while the entry is in the map.  Internal to
 * src/discord. */
#ifndef SOUK_DISCORD_STRMAP_H
#define SOUK_DISCORD_STRMAP_H

#include <stddef.h>
#include <stdint.h>

/** One entry; embed it in the value struct. */
typedef struct souk__smap_ent {
  struct souk__smap_ent *next;
  uint64_t hash;
  const char *key;
} souk__smap_ent_t;

/** The map; zero-initialise.  Free the slot array with souk__smap_free. */
typedef struct souk__smap {
  souk__smap_ent_t **tab;
  size_t cap; /* power of two, or 0 before the first insert */
  size_t n;
} souk__smap_t;

/** The entry with key, or NULL. */
souk__smap_ent_t *souk__smap_get(const souk__smap_t *m, const char *key);
/** Insert e under key (borrowed: it must outlive the entry's membership).
 * The key must not be present already. */
void souk__smap_put(souk__smap_t *m, souk__smap_ent_t *e, const char *key);
/** Remove e, which must be in m. */
void souk__smap_del(souk__smap_t *m, souk__smap_ent_t *e);
/** Release the slot array (not the entries); m becomes empty. */
void souk__smap_free(souk__smap_t *m);
/** Entry after e in slot order (e NULL: the first), or NULL at the end.  The
 * map must not change between calls, except by deleting the entry last
 * returned after the next one has been fetched. */
souk__smap_ent_t *souk__smap_next(const souk__smap_t *m, const souk__smap_ent_t *e);
/** FNV-1a 64 of s[0..n), used for keys and to fingerprint secrets. */
uint64_t souk__fnv1a(const void *s, size_t n);

#endif
