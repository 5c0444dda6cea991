/* Thread states: the registry of threads seen, each one's clock and the locks it holds. */
#include "fast.h"

__thread ThreadState *tls_state __attribute__((tls_model("initial-exec")));
static Lock registry;   /* all_threads and nthreads (a leaf: nothing is locked inside it) */
static ThreadState **all_threads;
uint32_t nthreads;
static uint32_t capthreads;

/* Each on cache lines of its own: every probe stores to its thread's state (ebr_enter), and
 * two threads' states on one line would make their probes fight over it. */
#define LINE 64
static ThreadState *alloc_state(void) {
    size_t size = (sizeof(ThreadState) + LINE - 1) / LINE * LINE;
    ThreadState *t = aligned_alloc(LINE, size);
    if (t) memset(t, 0, size);
    return t;
}

ThreadState *new_thread(void) {
    /* made outside the registry's lock: allocation takes none of ours, but keep it short */
    ThreadState *t = alloc_state();
    if (!t) { PyErr_NoMemory(); return NULL; }
    LOCK(&registry);
    if (nthreads >= (1u << TID_BITS)) {
        UNLOCK(&registry);
        free(t);
        PyErr_SetString(PyExc_RuntimeError, "racewatch: too many threads");
        return NULL;
    }
    if (nthreads == capthreads) {
        uint32_t cap = capthreads ? capthreads * 2 : 16;
        ThreadState **a = PyMem_RawRealloc(all_threads, cap * sizeof(*a));
        if (!a) { UNLOCK(&registry); free(t); PyErr_NoMemory(); return NULL; }
        all_threads = a;
        capthreads = cap;
    }
    t->tid = nthreads;
    if (vc_grow(&t->vc, t->tid + 1) < 0) { UNLOCK(&registry); free(t); return NULL; }
    t->vc.c[t->tid] = 1;
    t->epoch = (1ull << CLOCK_SHIFT) | ((uint64_t)t->tid << 1);
    all_threads[nthreads] = t;
    STORE_REL(&nthreads, nthreads + 1);
    UNLOCK(&registry);
    tls_state = t;
    join_start_edge(t);   /* sync.c: a first event before the bootstrap hook */
    return t;
}

#ifdef RW_FREE_THREADED
/* The oldest epoch a thread inside the runtime announced, or `now` if none is inside. */
uint64_t oldest_announcement(uint64_t now) {
    uint64_t oldest = now;
    LOCK(&registry);
    for (uint32_t i = 0; i < nthreads; i++) {
        uint64_t active = LOAD_ACQ(&all_threads[i]->active);
        if (active && active < oldest) oldest = active;
    }
    UNLOCK(&registry);
    return oldest;
}
#endif
ThreadState *thread_at(uint32_t tid) {   /* states live until forget_threads: no use after */
    LOCK(&registry);
    ThreadState *t = tid < nthreads ? all_threads[tid] : NULL;
    UNLOCK(&registry);
    return t;
}

void tick(ThreadState *t) {
    t->vc.c[t->tid]++;
    t->epoch = (t->vc.c[t->tid] << CLOCK_SHIFT) | ((uint64_t)t->tid << 1);
}

/* In a fork child only the forking thread survives: forget every thread (the caller then
 * registers the survivor as thread 0). */
void forget_threads(void) {
    for (uint32_t i = 0; i < nthreads; i++) {
        PyMem_RawFree(all_threads[i]->vc.c);
        free_held(all_threads[i]);
        if (all_threads[i]->order_seen) {
            map_clear(all_threads[i]->order_seen);
            PyMem_RawFree(all_threads[i]->order_seen);
        }
        free(all_threads[i]);
    }
    nthreads = 0;
    tls_state = NULL;
    memset(&registry, 0, sizeof(registry));
}
