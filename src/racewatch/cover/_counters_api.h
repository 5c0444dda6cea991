/* What the coverage counters (_counters.c) share with the race runtime (runtime/fast/tokens.c):
 * how a line's run is counted, and the capsule through which a race token that also counts its
 * line (a merged probe, see rewriter/merge.py) reaches the counter of that line. */

#ifndef RACEWATCH_COUNTERS_API_H
#define RACEWATCH_COUNTERS_API_H

#include <Python.h>
#include <stdint.h>

#if defined(_MSC_VER)
#include <intrin.h>
#define RW_ATOMIC_ADD(p) _InterlockedIncrement64((volatile __int64 *)(p))
#define RW_ATOMIC_STORE_ONE(p) _InterlockedExchange64((volatile __int64 *)(p), 1)
#define RW_RELAXED_LOAD(p) (*(volatile uint64_t *)(p))
#define RW_RELAXED_STORE(p, v) (*(volatile uint64_t *)(p) = (v))
#else
#define RW_ATOMIC_ADD(p) __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#define RW_ATOMIC_STORE_ONE(p) __atomic_store_n((p), 1, __ATOMIC_RELAXED)
#define RW_RELAXED_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define RW_RELAXED_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#endif

enum { RW_MODE_SET, RW_MODE_COUNT, RW_MODE_ATOMIC };

/* The `enabled` flag, read by every probe and set by another thread when racewatch stops. */
#if defined(_MSC_VER)
static inline int rw_enabled(const int *flag) { return *(volatile const int *)flag; }
static inline void rw_set_enabled(int *flag, int on) { *(volatile int *)flag = on; }
#else
static inline int rw_enabled(const int *flag) { return __atomic_load_n(flag, __ATOMIC_RELAXED); }
static inline void rw_set_enabled(int *flag, int on) { __atomic_store_n(flag, on, __ATOMIC_RELAXED); }
#endif

/* One run of a line, counted the mode's way.
 *
 * With a GIL, `atomic` is a plain increment too: the whole slot runs under the GIL, which no
 * other thread can take between the load and the store, and taking or handing it over orders
 * memory. A locked add would only make every probe wait for the store buffer to drain (about
 * 80% of the slot's samples under perf). Free-threaded builds use the atomic fetch-add. */
static inline void
rw_bump(uint64_t *counter, int mode)
{
    switch (mode) {
#ifdef Py_GIL_DISABLED
    case RW_MODE_ATOMIC: RW_ATOMIC_ADD(counter); break;
    /* count may lose increments without a GIL, as Go's does, but never tears a counter: a
     * relaxed load and store (the same two moves on x86 and ARM) */
    case RW_MODE_COUNT: RW_RELAXED_STORE(counter, RW_RELAXED_LOAD(counter) + 1); break;
#else
    case RW_MODE_ATOMIC: /* count's plain increment is atomic under the GIL (see above) */
    case RW_MODE_COUNT: (*counter)++; break;
#endif
    default: RW_ATOMIC_STORE_ONE(counter);
    }
}

#define RW_COUNTERS_CAPSULE "racewatch.cover._counters._api"

typedef struct {
    /* 0 once racewatch stops: no line is counted then */
    const int *enabled;
    /* The counter of a hit token and its mode, or NULL when `hit` is not a C hit token or its
     * site has no counter yet (then ~hit counts, more slowly). */
    uint64_t *(*counter_of)(PyObject *hit, int *mode);
} RwCountersApi;

#endif
