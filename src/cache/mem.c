/* The memory backend: a chained hash table for lookups and a doubly linked
 * list in recency order for eviction, bounded by a byte budget.
 *
 * The budget counts what an entry really costs (souk_cache_entry_cost()):
 * the key, the value and a fixed overhead for the entry header, the
 * allocator's header and the entry's share of the bucket array, so the
 * memory guard can reason in bytes.  The hash is seeded per process so keys
 * built from user input cannot be chosen to collide on every run. */
#include "cache/cache_int.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <string.h>

/* The allocator's header (glibc: 8-16 bytes) and two bucket pointers: the
 * table keeps at most one entry per bucket on average, and growing doubles
 * it. */
#define ENTRY_OVERHEAD (sizeof(souk__mem_entry_t) + 16 + 2 * sizeof(void *))
#define MIN_BUCKETS    64

size_t souk_cache_entry_cost(size_t key_len, size_t val_len) {
  return ENTRY_OVERHEAD + key_len + 1 + val_len;
}

static size_t entry_cost(const souk__mem_entry_t *e) {
  return souk_cache_entry_cost(e->klen, e->vlen);
}

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t hash_key(uint64_t seed, const char *k, size_t n) {
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15u);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, k, 8);
    h = mix(h ^ w);
    k += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, k, n);
  return mix(h ^ w ^ 0xff51afd7ed558ccdu);
}

static uint64_t now(const souk__mem_t *m) { return m->clock.now_ms(m->clock.ud); }

void souk__mem_init(souk__mem_t *m, size_t max_bytes, const souk_clock_t *clock) {
  memset(m, 0, sizeof *m);
  m->nbuckets = MIN_BUCKETS;
  m->buckets = souk_calloc(m->nbuckets, sizeof *m->buckets);
  m->lru.next = m->lru.prev = &m->lru;
  m->max_bytes = max_bytes;
  m->seed = souk_rand64();
  m->clock = clock ? *clock : souk_clock_mono;
}

static void lru_unlink(souk__mem_entry_t *e) {
  e->lru.prev->next = e->lru.next;
  e->lru.next->prev = e->lru.prev;
}

static void lru_push_front(souk__mem_t *m, souk__mem_entry_t *e) {
  e->lru.next = m->lru.next;
  e->lru.prev = &m->lru;
  m->lru.next->prev = &e->lru;
  m->lru.next = &e->lru;
}

/* Unlinks e from its chain given the link that points at it, then from the
 * LRU list, and frees it. */
static void remove_at(souk__mem_t *m, souk__mem_entry_t **link) {
  souk__mem_entry_t *e = *link;
  *link = e->hnext;
  lru_unlink(e);
  m->bytes -= entry_cost(e);
  m->count--;
  souk_free(e);
}

static souk__mem_entry_t **find_link(souk__mem_t *m, const char *key, size_t klen, uint64_t h) {
  souk__mem_entry_t **link = &m->buckets[h & (m->nbuckets - 1)];
  while (*link) {
    souk__mem_entry_t *e = *link;
    if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) return link;
    link = &e->hnext;
  }
  return NULL;
}

static void remove_entry(souk__mem_t *m, souk__mem_entry_t *e) {
  souk__mem_entry_t **link = find_link(m, e->data, e->klen, e->hash);
  SOUK_ASSERT(link && *link == e);
  remove_at(m, link);
}

static void grow(souk__mem_t *m) {
  size_t n = m->nbuckets * 2;
  souk__mem_entry_t **b = souk_calloc(n, sizeof *b);
  for (size_t i = 0; i < m->nbuckets; i++) {
    souk__mem_entry_t *e = m->buckets[i];
    while (e) {
      souk__mem_entry_t *next = e->hnext;
      e->hnext = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
      e = next;
    }
  }
  souk_free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
  /* The cursor's position means nothing in the new table; starting over
   * only makes one sweep look at some buckets twice. */
  m->sweep_cursor = 0;
}

void souk__mem_free(souk__mem_t *m) {
  souk__lru_t *n = m->lru.next;
  while (n != &m->lru) {
    souk__mem_entry_t *e = (souk__mem_entry_t *)n;
    n = n->next;
    souk_free(e);
  }
  souk_free(m->buckets);
  m->buckets = NULL;
  m->lru.next = m->lru.prev = &m->lru;
  m->count = 0;
  m->bytes = 0;
}

int souk__mem_get(souk__mem_t *m, const char *key, size_t klen, const void **val, size_t *vlen) {
  uint64_t h = hash_key(m->seed, key, klen);
  souk__mem_entry_t **link = find_link(m, key, klen, h);
  if (!link) return SOUK_ENOTFOUND;
  souk__mem_entry_t *e = *link;
  if (e->expires <= now(m)) {
    remove_at(m, link);
    m->expired++;
    return SOUK_ENOTFOUND;
  }
  lru_unlink(e);
  lru_push_front(m, e);
  *val = e->data + e->klen + 1;
  *vlen = e->vlen;
  return 0;
}

/* Evicts from the old end of the LRU list until bytes fit the budget. */
static size_t evict_to(souk__mem_t *m, size_t budget) {
  size_t freed = 0;
  while (m->bytes > budget && m->lru.prev != &m->lru) {
    souk__mem_entry_t *e = (souk__mem_entry_t *)m->lru.prev;
    freed += entry_cost(e);
    remove_entry(m, e);
    m->evictions++;
  }
  return freed;
}

void souk__mem_set(souk__mem_t *m, const char *key, size_t klen, const void *val, size_t vlen,
                   uint64_t ttl_ms, int cat) {
  uint64_t h = hash_key(m->seed, key, klen);
  souk__mem_entry_t **link = find_link(m, key, klen, h);
  if (link) remove_at(m, link);
  if (souk_cache_entry_cost(klen, vlen) > m->max_bytes) {
    /* It could never fit: storing it would only evict everything else. */
    m->evictions++;
    return;
  }
  souk__mem_entry_t *e = souk_malloc(sizeof *e + klen + 1 + vlen);
  e->hash = h;
  e->klen = klen;
  e->vlen = vlen;
  e->cat = cat;
  uint64_t t = now(m);
  e->expires = ttl_ms == 0 || ttl_ms > UINT64_MAX - t ? UINT64_MAX : t + ttl_ms;
  memcpy(e->data, key, klen);
  e->data[klen] = '\0';
  if (vlen) memcpy(e->data + klen + 1, val, vlen);
  if (m->count + 1 > m->nbuckets) grow(m);
  size_t b = h & (m->nbuckets - 1);
  e->hnext = m->buckets[b];
  m->buckets[b] = e;
  lru_push_front(m, e);
  m->count++;
  m->bytes += entry_cost(e);
  evict_to(m, m->max_bytes);
}

bool souk__mem_del(souk__mem_t *m, const char *key, size_t klen) {
  souk__mem_entry_t **link = find_link(m, key, klen, hash_key(m->seed, key, klen));
  if (!link) return false;
  remove_at(m, link);
  return true;
}

size_t souk__mem_clear(souk__mem_t *m, const char *pattern) {
  size_t n = 0, plen = pattern ? strlen(pattern) : 0;
  for (size_t i = 0; i < m->nbuckets; i++) {
    souk__mem_entry_t **link = &m->buckets[i];
    while (*link) {
      souk__mem_entry_t *e = *link;
      if (!pattern || souk__glob_match(pattern, plen, e->data, e->klen)) {
        remove_at(m, link);
        n++;
      } else {
        link = &e->hnext;
      }
    }
  }
  return n;
}

size_t souk__mem_sweep(souk__mem_t *m, size_t max_buckets) {
  uint64_t t = now(m);
  size_t n = 0;
  if (max_buckets > m->nbuckets) max_buckets = m->nbuckets;
  for (size_t k = 0; k < max_buckets; k++) {
    size_t i = m->sweep_cursor;
    m->sweep_cursor = (i + 1) & (m->nbuckets - 1);
    souk__mem_entry_t **link = &m->buckets[i];
    while (*link) {
      if ((*link)->expires <= t) {
        remove_at(m, link);
        n++;
      } else {
        link = &(*link)->hnext;
      }
    }
  }
  m->expired += n;
  return n;
}

size_t souk__mem_trim_to(souk__mem_t *m, size_t budget) {
  if (m->bytes <= budget) return 0;
  size_t before = m->bytes;
  /* Expired entries go first: they cost nothing to lose. */
  souk__mem_sweep(m, m->nbuckets);
  evict_to(m, budget);
  return before - m->bytes;
}

/* Redis's stringmatchlen(), without the nocase flag, iterative for '*'
 * with one backtracking point so a hostile pattern cannot go exponential. */
bool souk__glob_match(const char *p, size_t plen, const char *s, size_t slen) {
  const char *star_p = NULL, *star_s = NULL;
  size_t star_plen = 0, star_slen = 0;
  for (;;) {
    if (plen == 0) {
      if (slen == 0) return true;
      goto backtrack;
    }
    if (*p == '*') {
      while (plen > 1 && p[1] == '*')
        p++, plen--;
      star_p = p + 1;
      star_plen = plen - 1;
      star_s = s;
      star_slen = slen;
      p++, plen--;
      continue;
    }
    if (slen == 0) goto backtrack;
    if (*p == '?') {
      p++, plen--, s++, slen--;
      continue;
    }
    if (*p == '[') {
      p++, plen--;
      bool neg = plen > 0 && *p == '^';
      if (neg) p++, plen--;
      bool match = false;
      for (;;) {
        if (plen == 0) break; /* An unterminated class ends the pattern. */
        if (*p == ']') {
          p++, plen--;
          break;
        }
        if (*p == '\\' && plen >= 2) {
          p++, plen--;
          if (*p == *s) match = true;
          p++, plen--;
        } else if (plen >= 3 && p[1] == '-' && p[2] != ']') {
          unsigned char a = (unsigned char)p[0], b = (unsigned char)p[2], c = (unsigned char)*s;
          if (a > b) {
            unsigned char t = a;
            a = b;
            b = t;
          }
          if (c >= a && c <= b) match = true;
          p += 3, plen -= 3;
        } else {
          if (*p == *s) match = true;
          p++, plen--;
        }
      }
      if (neg) match = !match;
      if (!match) goto backtrack;
      s++, slen--;
      continue;
    }
    if (*p == '\\' && plen >= 2) p++, plen--;
    if (*p != *s) goto backtrack;
    p++, plen--, s++, slen--;
    continue;
  backtrack:
    if (!star_p || star_slen == 0) return false;
    star_s++;
    star_slen--;
    p = star_p;
    plen = star_plen;
    s = star_s;
    slen = star_slen;
  }
}
