/* Safety without a GIL: per-object lock stripes, and memory that a fast path may still be
 * reading (a record that moved, a map's old slots, a replaced index or read set) freed only
 * once every thread has left the runtime since it was replaced: epoch-based reclamation.
 *
 * A thread announces the global epoch while it is inside (ebr_enter, fast.h) and 0 when it
 * leaves. Retired memory is tagged with the epoch it was retired in; a reclaim bumps the
 * epoch and frees what is older than every announcement. A reader must store its announcement
 * before it loads a pointer (store, then load: the one order x86 does not keep), which costs
 * a fence per probe; on Linux the reclaimer makes every thread run that fence for it instead
 * (membarrier, PRIVATE_EXPEDITED), so the fast path only stores. Under ThreadSanitizer, which
 * cannot see membarrier, readers fence themselves. With a GIL nothing is deferred. */
#include "fast.h"

#ifdef RW_FREE_THREADED

#if defined(__linux__) && !defined(RW_TSAN)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define HAVE_MEMBARRIER 1
#endif

/* Stripes on cache lines of their own: threads taking neighbouring stripes do not contend. */
#define STRIPE_BITS 8
typedef struct {
    Lock lock;
    char pad[64 - sizeof(Lock)];
} Stripe;
static Stripe stripes[1 << STRIPE_BITS];

Lock *stripe_of(const void *obj) {
    uint64_t h = ((uint64_t)(uintptr_t)obj >> 4) * 0x9E3779B97F4A7C15ull;
    return &stripes[h >> (64 - STRIPE_BITS)].lock;
}

uint64_t ebr_epoch = 1;
int ebr_asymmetric;   /* 1: the reclaimer fences for the readers (membarrier) */

typedef struct {
    void *p;
    void (*free_fn)(void *);
    uint64_t epoch;
} Retired;

static Lock retire_lock;
static Retired *retired;
static size_t nretired, capretired, reclaim_at = 64, retired_peak;

/* How many blocks wait for readers to leave, now and at most (for stats()). */
void retired_counts(size_t *now, size_t *peak) {
    LOCK(&retire_lock);
    *now = nretired;
    *peak = retired_peak;
    UNLOCK(&retire_lock);
}

static void fence_every_thread(void) {
#ifdef HAVE_MEMBARRIER
    if (ebr_asymmetric && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
#endif
    __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* readers then fenced themselves */
}

/* Free what no thread can still be reading. Called with the retire lock held. */
static void reclaim(void) {
    uint64_t now = __atomic_add_fetch(&ebr_epoch, 1, __ATOMIC_SEQ_CST);
    fence_every_thread();
    uint64_t oldest = oldest_announcement(now);
    size_t kept = 0;
    for (size_t i = 0; i < nretired; i++) {
        if (retired[i].epoch < oldest) retired[i].free_fn(retired[i].p);
        else retired[kept++] = retired[i];
    }
    nretired = kept;
    /* a thread long inside (a report being built) must not make every retire rescan */
    reclaim_at = kept * 2 > 64 ? kept * 2 : 64;
}

void retire(void *p, void (*free_fn)(void *)) {
    if (!p) return;
    LOCK(&retire_lock);
    if (nretired == capretired) {
        size_t cap = capretired ? capretired * 2 : 256;
        Retired *a = PyMem_RawRealloc(retired, cap * sizeof(Retired));
        if (!a) {   /* cannot defer: leak rather than free under a reader */
            UNLOCK(&retire_lock);
            return;
        }
        retired = a;
        capretired = cap;
    }
    retired[nretired++] = (Retired){p, free_fn, __atomic_load_n(&ebr_epoch, __ATOMIC_SEQ_CST)};
    if (nretired > retired_peak) retired_peak = nretired;
    if (nretired >= reclaim_at) reclaim();
    UNLOCK(&retire_lock);
}

/* In a fork child only this thread runs: every lock is free, everything retired can go. */
void guards_after_fork(void) {
    memset(stripes, 0, sizeof(stripes));
    memset(&retire_lock, 0, sizeof(retire_lock));
    for (size_t i = 0; i < nretired; i++) retired[i].free_fn(retired[i].p);
    nretired = 0;
}

int guards_init(void) {
#ifdef HAVE_MEMBARRIER
    ebr_asymmetric =
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
    return 0;
}

#else   /* a GIL: one lock in all, the GIL; nothing to defer */

Lock *stripe_of(const void *obj) {
    static Lock none;
    return &none;
}

void retire(void *p, void (*free_fn)(void *)) {
    if (p) free_fn(p);
}

void retired_counts(size_t *now, size_t *peak) { *now = *peak = 0; }

void guards_after_fork(void) {}

int guards_init(void) { return 0; }

#endif
