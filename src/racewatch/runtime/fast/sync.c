/* Sync vars: the clock of each synchronization object (lock, event, queue, thread,
 * annotation), and the edges of everything but locks (locks.c): a release publishes the
 * thread's clock on the object, an acquire joins it. */
#include "fast.h"

SyncVar *sync_var(PyObject *obj) {
    SyncVar *var = map_get(&syncs, (uintptr_t)obj);
    if (var) return var;
    Tracked *fresh = tracked_new(obj, KIND_SYNC);   /* may run GC */
    return fresh ? (SyncVar *)tracked_insert(&syncs, obj, fresh) : NULL;
}

int sync_edge(PyObject *obj, int is_acquire) {
    ThreadState *t = current();
    if (!t) return -1;
    SyncVar *var = sync_var(obj);
    if (!var) return -1;
    if (is_acquire ? vc_join(&t->vc, &var->vc) : vc_join(&var->vc, &t->vc)) return -1;
    tick(t);
    return 0;
}

static PyObject *sync_event(PyObject *obj, int is_acquire) {
    if (sync_edge(obj, is_acquire) < 0) return NULL;
    Py_RETURN_NONE;
}

PyObject *fast_happens_after(PyObject *m, PyObject *obj) { return sync_event(obj, 1); }
PyObject *fast_happens_before(PyObject *m, PyObject *obj) { return sync_event(obj, 0); }

PyObject *fast_thread_end(PyObject *m, PyObject *obj) { return sync_event(obj, 0); }
