/* Sync vars: the clock of each synchronization object (lock, event, queue, thread,
 * annotation), and the edges of everything but locks (locks.c): a release publishes the
 * thread's clock on the object, an acquire joins it. A sync var's clock is guarded by its
 * object's stripe. */
#include "fast.h"

/* The sync var of `obj`, made if need be (may run GC). Without a GIL it may be freed by the
 * object's death once returned: callers look it up again under the stripe before use. */
SyncVar *sync_var(PyObject *obj) {
    SyncVar *var = table_get(&syncs, obj);
    if (var) return var;
    Tracked *fresh = tracked_new(obj, KIND_SYNC);   /* may run GC */
    return fresh ? (SyncVar *)tracked_insert(&syncs, obj, fresh) : NULL;
}

/* An acquire (this thread's clock takes in the sync var's) or a release (the sync var's
 * takes in this thread's), then a tick. */
int sync_edge(PyObject *obj, int is_acquire) {
    ThreadState *t = current();
    if (!t) return -1;
    if (!sync_var(obj)) return PyErr_Occurred() ? -1 : 0;
    Lock *stripe = stripe_of(obj);
    LOCK(stripe);
    SyncVar *var = table_get(&syncs, obj);
    int err = !var ? 0 : is_acquire ? vc_join(&t->vc, &var->vc) : vc_join(&var->vc, &t->vc);
    UNLOCK(stripe);
    if (err) return -1;
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
