/* Thread states: the registry of threads seen, each one's clock and the locks it holds. */
#include "fast.h"

__thread ThreadState *tls_state __attribute__((tls_model("initial-exec")));
static ThreadState **all_threads;
uint32_t nthreads;
static uint32_t capthreads;

ThreadState *new_thread(void) {
    if (nthreads >= (1u << TID_BITS)) {
        PyErr_SetString(PyExc_RuntimeError, "racewatch: too many threads");
        return NULL;
    }
    if (nthreads == capthreads) {
        uint32_t cap = capthreads ? capthreads * 2 : 16;
        ThreadState **a = PyMem_RawRealloc(all_threads, cap * sizeof(*a));
        if (!a) { PyErr_NoMemory(); return NULL; }
        all_threads = a;
        capthreads = cap;
    }
    ThreadState *t = PyMem_RawCalloc(1, sizeof(ThreadState));
    if (!t) { PyErr_NoMemory(); return NULL; }
    t->tid = nthreads;
    if (vc_grow(&t->vc, t->tid + 1) < 0) { PyMem_RawFree(t); return NULL; }
    t->vc.c[t->tid] = 1;
    t->epoch = (1ull << CLOCK_SHIFT) | ((uint64_t)t->tid << 1);
    all_threads[nthreads++] = t;
    tls_state = t;
    return t;
}

void tick(ThreadState *t) {
    t->vc.c[t->tid]++;
    t->epoch = (t->vc.c[t->tid] << CLOCK_SHIFT) | ((uint64_t)t->tid << 1);
}

int update_lockset(ThreadState *t, uint32_t sync_id, int delta, uint32_t site) {
    uint32_t i = 0;
    while (i < t->nheld && t->held_id[i] < sync_id) i++;
    if (i < t->nheld && t->held_id[i] == sync_id) {
        if (delta > 0) { t->held_count[i]++; return 0; }
        if (--t->held_count[i] > 0) return 0;
        memmove(&t->held_id[i], &t->held_id[i + 1], (t->nheld - i - 1) * sizeof(uint32_t));
        memmove(&t->held_count[i], &t->held_count[i + 1],
                (t->nheld - i - 1) * sizeof(uint32_t));
        memmove(&t->held_site[i], &t->held_site[i + 1], (t->nheld - i - 1) * sizeof(uint32_t));
        t->nheld--;
    } else {
        if (delta < 0) return 0;   /* released a lock acquired out of our sight */
        if (t->nheld == t->capheld) {
            uint32_t cap = t->capheld ? t->capheld * 2 : 4;
            uint32_t *a = PyMem_RawRealloc(t->held_id, cap * sizeof(uint32_t));
            if (!a) { PyErr_NoMemory(); return -1; }
            t->held_id = a;
            uint32_t *b = PyMem_RawRealloc(t->held_count, cap * sizeof(uint32_t));
            if (!b) { PyErr_NoMemory(); return -1; }
            t->held_count = b;
            uint32_t *c = PyMem_RawRealloc(t->held_site, cap * sizeof(uint32_t));
            if (!c) { PyErr_NoMemory(); return -1; }
            t->held_site = c;
            t->capheld = cap;
        }
        memmove(&t->held_id[i + 1], &t->held_id[i], (t->nheld - i) * sizeof(uint32_t));
        memmove(&t->held_count[i + 1], &t->held_count[i], (t->nheld - i) * sizeof(uint32_t));
        memmove(&t->held_site[i + 1], &t->held_site[i], (t->nheld - i) * sizeof(uint32_t));
        t->held_id[i] = sync_id;
        t->held_count[i] = 1;
        t->held_site[i] = site;
        t->nheld++;
    }
    if (intern_lockset(t) < 0) return -1;
    t->extra = intern_extra(t->lockset, 0);
    return 0;
}


/* In a fork child only the forking thread survives: forget every thread (the caller then
 * registers the survivor as thread 0). */
void forget_threads(void) {
    for (uint32_t i = 0; i < nthreads; i++) {
        PyMem_RawFree(all_threads[i]->vc.c);
        PyMem_RawFree(all_threads[i]->held_id);
        PyMem_RawFree(all_threads[i]->held_count);
        PyMem_RawFree(all_threads[i]->held_site);
        if (all_threads[i]->order_seen) {
            PyMem_RawFree(((Map *)all_threads[i]->order_seen)->slots);
            PyMem_RawFree(all_threads[i]->order_seen);
        }
        PyMem_RawFree(all_threads[i]);
    }
    nthreads = 0;
    tls_state = NULL;
}
