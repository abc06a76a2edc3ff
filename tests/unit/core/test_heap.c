/* The heap's tuning (src/core/heap.c): one malloc arena for every thread,
 * and the trimmer giving freed heap pages back to the kernel. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include <malloc.h>
#include <pthread.h>

#include "core/core.h"

/* RssAnon of this process, in kB. */
static long rss_anon_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "RssAnon: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

/* How many arenas malloc_info() describes ("<heap nr=" elements). */
static int arenas(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  malloc_info(0, f);
  fclose(f);
  int n = 0;
  for (const char *p = text; (p = strstr(p, "<heap nr=")); p++) n++;
  free(text);
  return n;
}

static pthread_barrier_t together;

/* Allocate while every other thread allocates too: without a limit, glibc
 * gives each thread that finds the arena busy an arena of its own. */
static void *allocator(void *arg) {
  (void)arg;
  pthread_barrier_wait(&together);
  for (int i = 0; i < 20000; i++) {
    void *p = malloc(200 + (size_t)(i % 7) * 300);
    memset(p, 1, 16);
    free(p);
  }
  return NULL;
}

/* Under AddressSanitizer malloc is ASan's, not glibc's: there is no glibc
 * arena or free list to look at. */
#if defined(__SANITIZE_ADDRESS__)
#define GLIBC_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GLIBC_MALLOC 0
#endif
#endif
#ifndef GLIBC_MALLOC
#define GLIBC_MALLOC 1
#endif

static void test_one_arena_for_every_thread(void **state) {
  if (!GLIBC_MALLOC) skip();
  enum { N = 6 };
  pthread_t t[N];
  pthread_barrier_init(&together, NULL, N);
  for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&t[i], NULL, allocator, NULL), 0);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&together);
  assert_int_equal(arenas(), 1);
}

static void test_trim_gives_freed_pages_back(void **state) {
  if (!GLIBC_MALLOC) skip();
  enum { N = 4000, SIZE = 1000 };
  static void *blocks[N];
  souk__heap_trim_step(); /* start from a settled heap */
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(SIZE);
    memset(blocks[i], 7, SIZE);
  }
  /* A block kept at the end pins the top of the heap, so free() alone
   * cannot shrink it, as in a daemon where something always lives above. */
  void *pin = malloc(64);
  long full = rss_anon_kb();
  for (int i = 0; i < N; i++) free(blocks[i]);
  long freed = rss_anon_kb();
  /* Freed but still resident: what the trimmer is for. */
  assert_true(full - freed < 1000);
  assert_true(souk__heap_trim_step());
  long trimmed = rss_anon_kb();
  assert_true(freed - trimmed >= 3000);
  /* Nothing more was freed: the next look does not trim again. */
  assert_false(souk__heap_trim_step());
  free(pin);
}

int main(void) {
  souk__heap_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_arena_for_every_thread),
      cmocka_unit_test(test_trim_gives_freed_pages_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
