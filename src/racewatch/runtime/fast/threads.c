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

ThreadState *thread_at(uint32_t tid) { return tid < nthreads ? all_threads[tid] : NULL; }

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
            PyMem_RawFree(((Map *)all_threads[i]->order_seen)->slots);
            PyMem_RawFree(all_threads[i]->order_seen);
        }
        PyMem_RawFree(all_threads[i]);
    }
    nthreads = 0;
    tls_state = NULL;
}
