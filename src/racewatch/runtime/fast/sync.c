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

/* The Thread a new thread runs: the `self` of threading's Thread._bootstrap, its outermost
 * frame (new reference), or NULL (an error may be set). Runs no Python code (sys.modules read
 * as a mapping: PyImport_GetModule may wait for a module being imported). */
static PyObject *bootstrapping_thread(void) {
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed; may allocate its object */
    if (!frame) return NULL;
    Py_INCREF(frame);
    for (PyFrameObject *back; (back = PyFrame_GetBack(frame)) != NULL; frame = back)
        Py_DECREF(frame);
    PyObject *found = NULL;
    PyObject *threading = PyMapping_GetItemString(PyImport_GetModuleDict(), "threading");
    PyObject *cls = threading ? PyObject_GetAttrString(threading, "Thread") : NULL;
    PyObject *fn = cls ? PyObject_GetAttrString(cls, "_bootstrap") : NULL;
    PyCodeObject *code = PyFrame_GetCode(frame);
    if (fn && PyFunction_Check(fn) && PyFunction_GetCode(fn) == (PyObject *)code) {
        PyObject *locals = PyFrame_GetLocals(frame);
        found = locals ? PyMapping_GetItemString(locals, "self") : NULL;
        Py_XDECREF(locals);
    }
    Py_DECREF(code);
    Py_XDECREF(fn);
    Py_XDECREF(cls);
    Py_XDECREF(threading);
    Py_DECREF(frame);
    return found;
}

/* A new thread's start edge at its first event, when that comes before the bootstrap hook
 * (interceptors.py) tells it: a collection that threading's own first allocations in the
 * thread started runs finalizers there, whose accesses come after everything its creator did
 * before start(). Looked up only, never made; collections off meanwhile (the lookup
 * allocates), so none runs before the edge. (One C step under the GIL; without it another
 * thread's gc.isenabled() in that instant sees False, or its gc.disable() then is undone.) */
void join_start_edge(ThreadState *t) {
    int collecting = PyGC_Disable();
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *pending = PyErr_GetRaisedException();
#else
    PyObject *type, *pending, *tb;
    PyErr_Fetch(&type, &pending, &tb);
#endif
    PyObject *thread = bootstrapping_thread();
    if (thread) {
        Lock *stripe = stripe_of(thread);
        LOCK(stripe);
        SyncVar *var = table_get(&syncs, thread);
        if (var) vc_join(&t->vc, &var->vc);   /* out of memory: as if not found */
        UNLOCK(stripe);
        Py_DECREF(thread);
    }
    PyErr_Clear();   /* not found, for whatever reason: the bootstrap hook tells the edge */
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(pending);
#else
    PyErr_Restore(type, pending, tb);
#endif
    if (collecting) PyGC_Enable();
}

static PyObject *sync_event(PyObject *obj, int is_acquire) {
    if (sync_edge(obj, is_acquire) < 0) return NULL;
    Py_RETURN_NONE;
}

PyObject *fast_happens_after(PyObject *m, PyObject *obj) { return sync_event(obj, 1); }
PyObject *fast_happens_before(PyObject *m, PyObject *obj) { return sync_event(obj, 0); }

PyObject *fast_thread_end(PyObject *m, PyObject *obj) { return sync_event(obj, 0); }
