/*
** engine/mem.c
** Allocator hooks, fault injection and the per-query arena.
** See LICENSE
**
** Every engine allocation goes through quay__malloc/realloc/free, which
** call the pluggable allocator (quay_set_allocator, like libuv's
** uv_replace_allocator).  Test builds (QUAY_TEST) can make the k-th
** allocation fail, once or from then on, for the OOM sweeps of the test
** suite; they also count live blocks so tests can prove nothing leaked.
**
** The arena holds per-query memory (SQL text, bind copies, plan nodes) and
** is freed in one call; it is sticky on OOM like SQLite's malloc.c.
*/
#include "quayInt.h"

#include <stdatomic.h>
#include <stdlib.h>

static quay_malloc_fn xMallocFn = malloc;
static quay_realloc_fn xReallocFn = realloc;
static quay_free_fn xFreeFn = free;

int quay_set_allocator(quay_malloc_fn xMalloc, quay_realloc_fn xRealloc,
                       quay_free_fn xFree) {
  if (xMalloc == NULL || xRealloc == NULL || xFree == NULL) {
    return QUAY_EMISUSE;
  }
  xMallocFn = xMalloc;
  xReallocFn = xRealloc;
  xFreeFn = xFree;
  return QUAY_OK;
}

#ifdef QUAY_TEST
/*
** Fault injection state.  Test builds count every allocation, so these
** counters are touched by every thread that allocates: they are atomics
** (relaxed order; they only count), which keeps two threads each working
** on their own quay_db free of data races in QUAY_TEST builds too (the
** ThreadSanitizer test, example.threads.tsan).  Arming the fault
** (quay_test_fail_alloc) is meant for single-threaded OOM sweeps.
*/
static atomic_long nFailAt = 0;     /* fail when nAllocs reaches this */
static atomic_int bFailSticky = 0;
static atomic_long nAllocs = 0;     /* allocations since arming */
static atomic_long nLive = 0;       /* blocks allocated and not freed */

void quay_test_fail_alloc(long k, int bSticky) {
  atomic_store_explicit(&nFailAt, k, memory_order_relaxed);
  atomic_store_explicit(&bFailSticky, bSticky, memory_order_relaxed);
  atomic_store_explicit(&nAllocs, 0, memory_order_relaxed);
}
long quay_test_alloc_count(void) {
  return atomic_load_explicit(&nAllocs, memory_order_relaxed);
}
long quay_test_alloc_live(void) {
  return atomic_load_explicit(&nLive, memory_order_relaxed);
}

/* Non-0 when this allocation must fail. */
static int fault(void) {
  long n = atomic_fetch_add_explicit(&nAllocs, 1, memory_order_relaxed) + 1;
  long k = atomic_load_explicit(&nFailAt, memory_order_relaxed);
  if (k <= 0) return 0;
  if (n == k) return 1;
  return atomic_load_explicit(&bFailSticky, memory_order_relaxed) && n > k;
}
#  define FAULT() fault()
#  define LIVE(d) \
     ((void)atomic_fetch_add_explicit(&nLive, (d), memory_order_relaxed))
#else
#  define FAULT() 0
#  define LIVE(d) ((void)0)
#endif

void *quay__malloc(size_t n) {
  void *p;
  if (n == 0) n = 1;
  if (FAULT()) return NULL;
  p = xMallocFn(n);
  if (p) LIVE(1);
  return p;
}

void *quay__calloc(size_t n) {
  void *p = quay__malloc(n);
  if (p) memset(p, 0, n);
  return p;
}

/* Like realloc; quay__realloc(NULL, n) allocates.  On failure the old
** block is untouched. */
void *quay__realloc(void *p, size_t n) {
  void *pNew;
  if (p == NULL) return quay__malloc(n);
  if (n == 0) n = 1;
  if (FAULT()) return NULL;
  pNew = xReallocFn(p, n);
  return pNew;
}

void quay__free(void *p) {
  if (p == NULL) return;
  LIVE(-1);
  xFreeFn(p);
}

char *quay__strndup(const char *z, size_t n) {
  char *zNew;
  if (z == NULL) return NULL;
  zNew = quay__malloc(n + 1);
  if (zNew == NULL) return NULL;
  memcpy(zNew, z, n);
  zNew[n] = 0;
  return zNew;
}

char *quay__strdup(const char *z) {
  if (z == NULL) return NULL;
  return quay__strndup(z, strlen(z));
}

/*
** {==================================================================
** Arena
** ===================================================================
*/
struct ArenaBlock {
  ArenaBlock *pNext;
  size_t nUsed, nSize;
  /* data follows, aligned to max_align_t */
};
#define ARENA_ALIGN 16
#define ARENA_HDR (((sizeof(ArenaBlock) + ARENA_ALIGN - 1) / ARENA_ALIGN) \
                   * ARENA_ALIGN)
#define ARENA_MIN 4096

void quay__arena_init(Arena *p) {
  p->pBlock = NULL;
  p->oom = 0;
}

/*
** Allocate n bytes aligned to 16 that live until quay__arena_free.
** Returns NULL (and sets oom) on allocation failure.
*/
void *quay__arena_alloc(Arena *p, size_t n) {
  ArenaBlock *b = p->pBlock;
  void *pRet;
  n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (n == 0) n = ARENA_ALIGN;
  if (p->oom) return NULL;
  if (b == NULL || b->nSize - b->nUsed < n) {
    size_t nSize = n > ARENA_MIN ? n : ARENA_MIN;
    ArenaBlock *bNew = quay__malloc(ARENA_HDR + nSize);
    if (bNew == NULL) {
      p->oom = 1;
      return NULL;
    }
    bNew->nUsed = 0;
    bNew->nSize = nSize;
    if (b && n > ARENA_MIN) {
      /* A big block goes second so the current block keeps filling. */
      bNew->pNext = b->pNext;
      b->pNext = bNew;
      bNew->nUsed = n;
      return (char *)bNew + ARENA_HDR;
    }
    bNew->pNext = b;
    p->pBlock = b = bNew;
  }
  pRet = (char *)b + ARENA_HDR + b->nUsed;
  b->nUsed += n;
  return pRet;
}

char *quay__arena_strdup(Arena *p, const char *z, size_t n) {
  char *zNew = quay__arena_alloc(p, n + 1);
  if (zNew == NULL) return NULL;
  if (n) memcpy(zNew, z, n);
  zNew[n] = 0;
  return zNew;
}

void quay__arena_free(Arena *p) {
  ArenaBlock *b = p->pBlock;
  while (b) {
    ArenaBlock *pNext = b->pNext;
    quay__free(b);
    b = pNext;
  }
  p->pBlock = NULL;
  p->oom = 0;
}
/* }================================================================== */
