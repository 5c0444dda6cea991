/* Read sets: the last read of each thread of a location whose reads are concurrent, interned.
 *
 * Threads that read many locations without synchronizing in between leave the same set on
 * each (every thread's read in its one epoch, from one site): a set per location grew memory
 * as threads x locations (64 threads reading a million objects: 2.5 GB). So equal sets are one
 * immutable object with a count of the cells holding it, found by hash; a read makes the set
 * with this thread's entry changed, which is most often already there. Immutable, a set is
 * read by fast paths without a lock and freed (retired) when its last cell lets go of it. */
#include <stddef.h>

#include "fast.h"

#define STRIPES 16   /* the table is striped by hash: one lock per stripe (a leaf) */

typedef struct Set {
    struct Set *next;   /* in its bucket */
    uint64_t hash;
    uint64_t cells;     /* how many cells hold it */
    Shared shared;      /* what cells point at (the fast path's view): n, a[] */
} Set;

typedef struct {
    Lock lock;
    Set **buckets;
    size_t cap, used;
} Stripe;

static Stripe stripes[STRIPES];

static inline Set *set_of(const Shared *sh) {
    return (Set *)((char *)sh - offsetof(Set, shared));
}

/* An entry's part of a set's hash: a sum of these, so one entry's change is two steps. */
static inline uint64_t entry_hash(uint32_t tid, const Access *a) {
    if (!a->epoch) return 0;
    uint64_t h = (a->epoch ^ ((uint64_t)a->site << 32 | a->extra)) + tid * 0x9E3779B97F4A7C15ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static inline int same_set(const Set *s, uint64_t hash, uint32_t n, const Access *a) {
    return s->hash == hash && s->shared.n == n && !memcmp(s->shared.a, a, n * sizeof(Access));
}

static int grow(Stripe *st) {
    size_t cap = st->cap ? st->cap * 2 : 64;
    Set **buckets = PyMem_RawCalloc(cap, sizeof(Set *));
    if (!buckets) return -1;
    for (size_t i = 0; i < st->cap; i++) {
        for (Set *s = st->buckets[i], *next; s; s = next) {
            next = s->next;
            s->next = buckets[(s->hash / STRIPES) & (cap - 1)];
            buckets[(s->hash / STRIPES) & (cap - 1)] = s;
        }
    }
    PyMem_RawFree(st->buckets);
    st->buckets = buckets;
    st->cap = cap;
    return 0;
}

/* The set of entries a[0..n) (the last nonzero), interned, with one more cell holding it. */
static Shared *intern(uint64_t hash, uint32_t n, const Access *a) {
    Stripe *st = &stripes[hash % STRIPES];
    LOCK(&st->lock);
    Set *found = NULL;
    for (Set *s = st->cap ? st->buckets[(hash / STRIPES) & (st->cap - 1)] : NULL; s; s = s->next)
        if (same_set(s, hash, n, a)) { found = s; break; }
    if (!found && (st->used + 1) * 2 > st->cap && grow(st) < 0) {
        UNLOCK(&st->lock);
        return NULL;
    }
    if (!found && (found = PyMem_RawMalloc(sizeof(Set) + n * sizeof(Access)))) {
        found->hash = hash;
        found->cells = 0;
        found->shared.n = n;
        memcpy(found->shared.a, a, n * sizeof(Access));
        found->next = st->buckets[(hash / STRIPES) & (st->cap - 1)];
        st->buckets[(hash / STRIPES) & (st->cap - 1)] = found;
        st->used++;
        account((Py_ssize_t)(sizeof(Set) + n * sizeof(Access)));
    }
    if (found) found->cells++;
    UNLOCK(&st->lock);
    return found ? &found->shared : NULL;
}

/* `sh` with thread `tid`'s entry set to `mine` (one more cell holding the result); NULL with
 * an error set if there is no memory. `sh` itself is left as it is. */
Shared *readset_with(const Shared *sh, uint32_t tid, Access mine) {
    uint32_t n = tid + 1 > sh->n ? tid + 1 : sh->n;
    Access on_stack[64], *a = n <= 64 ? on_stack : PyMem_RawMalloc(n * sizeof(Access));
    if (!a) { PyErr_NoMemory(); return NULL; }
    memcpy(a, sh->a, sh->n * sizeof(Access));
    memset(a + sh->n, 0, (n - sh->n) * sizeof(Access));
    uint64_t hash = set_of(sh)->hash - (tid < sh->n ? entry_hash(tid, &sh->a[tid]) : 0) +
                    entry_hash(tid, &mine);
    a[tid] = mine;
    Shared *made = intern(hash, n, a);
    if (a != on_stack) PyMem_RawFree(a);
    if (!made) PyErr_NoMemory();
    return made;
}

/* The set of two threads' reads (they were concurrent: the location turns read-shared). */
Shared *readset_pair(uint32_t tid1, Access a1, uint32_t tid2, Access a2) {
    uint32_t n = (tid1 > tid2 ? tid1 : tid2) + 1;
    Access on_stack[64], *a = n <= 64 ? on_stack : PyMem_RawCalloc(n, sizeof(Access));
    if (!a) { PyErr_NoMemory(); return NULL; }
    if (a == on_stack) memset(a, 0, n * sizeof(Access));
    a[tid1] = a1;
    a[tid2] = a2;
    Shared *made = intern(entry_hash(tid1, &a1) + entry_hash(tid2, &a2), n, a);
    if (a != on_stack) PyMem_RawFree(a);
    if (!made) PyErr_NoMemory();
    return made;
}

/* A cell lets go of `sh`; the last one frees it (once no fast path can be reading it). */
void readset_release(Shared *sh) {
    if (!sh) return;
    Set *set = set_of(sh);
    Stripe *st = &stripes[set->hash % STRIPES];
    LOCK(&st->lock);
    int last = --set->cells == 0;
    if (last) {
        Set **at = &st->buckets[(set->hash / STRIPES) & (st->cap - 1)];
        while (*at != set) at = &(*at)->next;
        *at = set->next;
        st->used--;
    }
    UNLOCK(&st->lock);
    if (last) {
        account(-(Py_ssize_t)(sizeof(Set) + sh->n * sizeof(Access)));
        retire(set, PyMem_RawFree);
    }
}

/* How many sets there are, and their bytes (for stats()). */
void readset_counts(size_t *sets, size_t *bytes) {
    *sets = *bytes = 0;
    for (int i = 0; i < STRIPES; i++) {
        LOCK(&stripes[i].lock);
        for (size_t b = 0; b < stripes[i].cap; b++)
            for (Set *s = stripes[i].buckets[b]; s; s = s->next) {
                ++*sets;
                *bytes += sizeof(Set) + s->shared.n * sizeof(Access);
            }
        UNLOCK(&stripes[i].lock);
    }
}

/* In a fork child: the sets still held stay valid; only the locks start free. */
void readsets_after_fork(void) {
    for (int i = 0; i < STRIPES; i++) memset(&stripes[i].lock, 0, sizeof(Lock));
}
