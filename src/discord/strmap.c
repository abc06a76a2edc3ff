/* Intrusive string-keyed hash map with separate chaining. */
#include "discord/strmap.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <string.h>

uint64_t souk__fnv1a(const void *s, size_t n) {
  const unsigned char *p = s;
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

souk__smap_ent_t *souk__smap_get(const souk__smap_t *m, const char *key) {
  if (!m->cap) return NULL;
  uint64_t h = souk__fnv1a(key, strlen(key));
  for (souk__smap_ent_t *e = m->tab[h & (m->cap - 1)]; e; e = e->next)
    if (e->hash == h && strcmp(e->key, key) == 0) return e;
  return NULL;
}

static void grow(souk__smap_t *m) {
  size_t ncap = m->cap ? m->cap * 2 : 16;
  souk__smap_ent_t **nt = souk_calloc(ncap, sizeof *nt);
  for (size_t i = 0; i < m->cap; i++) {
    souk__smap_ent_t *e = m->tab[i];
    while (e) {
      souk__smap_ent_t *next = e->next;
      size_t s = e->hash & (ncap - 1);
      e->next = nt[s];
      nt[s] = e;
      e = next;
    }
  }
  souk_free(m->tab);
  m->tab = nt;
  m->cap = ncap;
}

void souk__smap_put(souk__smap_t *m, souk__smap_ent_t *e, const char *key) {
  /* A load factor of at most 1 keeps chains short without tombstones. */
  if (m->n + 1 > m->cap) grow(m);
  e->key = key;
  e->hash = souk__fnv1a(key, strlen(key));
  size_t s = e->hash & (m->cap - 1);
  e->next = m->tab[s];
  m->tab[s] = e;
  m->n++;
}

void souk__smap_del(souk__smap_t *m, souk__smap_ent_t *e) {
  SOUK_ASSERT(m->cap);
  souk__smap_ent_t **pp = &m->tab[e->hash & (m->cap - 1)];
  while (*pp && *pp != e)
    pp = &(*pp)->next;
  SOUK_ASSERT(*pp == e);
  *pp = e->next;
  e->next = NULL;
  m->n--;
}

void souk__smap_free(souk__smap_t *m) {
  souk_free(m->tab);
  memset(m, 0, sizeof *m);
}

souk__smap_ent_t *souk__smap_next(const souk__smap_t *m, const souk__smap_ent_t *e) {
  size_t slot = 0;
  if (e) {
    if (e->next) return e->next;
    slot = (e->hash & (m->cap - 1)) + 1;
  }
  for (; slot < m->cap; slot++)
    if (m->tab[slot]) return m->tab[slot];
  return NULL;
}
