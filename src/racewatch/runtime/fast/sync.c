/* Sync vars: the clock of each synchronization object (lock, event, queue, annotation), the
 * acquire and release edges between threads, locks' names, the held locks handed to the
 * lock-order graph, and the proxy that records a lock's acquire/release at call sites. */
#include "fast.h"

static PyObject *sync_names;   /* list: lock id -> (type, address) */

static SyncVar *sync_var(PyObject *obj) {
    SyncVar *var = map_get(&syncs, (uintptr_t)obj);
    if (var) return var;
    Tracked *fresh = tracked_new(obj, KIND_SYNC);   /* may run GC */
    return fresh ? (SyncVar *)tracked_insert(&syncs, obj, fresh) : NULL;
}

/* Locks get a number (M<id> in reports) the first time they are held. */
static int name_lock(SyncVar *var, PyObject *obj) {
    /* (type, address): the report describes it, the same way for both runtimes */
    PyObject *name = Py_BuildValue("(On)", (PyObject *)Py_TYPE(obj), (Py_ssize_t)obj);
    if (!name) return -1;
    int err = PyList_Append(sync_names, name);
    Py_DECREF(name);
    if (err < 0) return -1;
    var = map_get(&syncs, (uintptr_t)obj);   /* the allocation may have run GC */
    if (var && !var->id) var->id = (uint32_t)PyList_GET_SIZE(sync_names) - 1;
    return 0;
}

static inline int holds(const ThreadState *t, uint32_t id) {
    for (uint32_t i = 0; i < t->nheld; i++)
        if (t->held_id[i] == id) return 1;
    return 0;
}

/* Taking lock `id` while holding others: a new (held set, lock) combination for this thread
 * is handed to the lock-order graph (runtime/lockorder.py), the same as the Python twin;
 * a known one costs one map lookup. Called before the lockset changes. Returns the arguments
 * of the call to make once the runtime's state is consistent, or NULL (none, or an error). */
static PyObject *new_order(ThreadState *t, uint32_t id, uint32_t site) {
    if (!lock_order || !t->nheld || holds(t, id)) return NULL;   /* re-entry adds no edge */
    if (!t->order_seen) {
        t->order_seen = PyMem_RawCalloc(1, sizeof(Map));
        if (!t->order_seen) { PyErr_NoMemory(); return NULL; }
    }
    uintptr_t key = (uintptr_t)((uint64_t)t->lockset << 32 | id);   /* lockset >= 1: never 0 */
    if (map_get(t->order_seen, key)) return NULL;
    if (map_put(t->order_seen, key, (void *)1) < 0) return NULL;
    PyObject *sites = PyTuple_New(t->nheld);
    if (!sites) return NULL;
    for (uint32_t i = 0; i < t->nheld; i++) {
        PyObject *v = PyLong_FromUnsignedLong(t->held_site[i]);
        if (!v) { Py_DECREF(sites); return NULL; }
        PyTuple_SET_ITEM(sites, i, v);
    }
    return Py_BuildValue("(INNII)", t->tid, lockset_tuple(t->lockset), sites, id, site);
}

static PyObject *sync_event(PyObject *obj, int is_acquire, int is_lock, uint32_t site) {
    ThreadState *t = current();
    if (!t) return NULL;
    SyncVar *var = sync_var(obj);
    if (!var) return NULL;
    if (is_lock && !var->id && name_lock(var, obj) < 0) return NULL;
    var = map_get(&syncs, (uintptr_t)obj);
    if (!var) Py_RETURN_NONE;
    uint32_t id = var->id;
    if (is_acquire ? vc_join(&t->vc, &var->vc) : vc_join(&var->vc, &t->vc)) return NULL;
    tick(t);
    PyObject *order = NULL;
    if (is_lock && is_acquire && t->nheld) {
        order = new_order(t, id, site);
        if (!order && PyErr_Occurred()) return NULL;
    }
    if (is_lock && update_lockset(t, id, is_acquire ? 1 : -1, site) < 0) {
        Py_XDECREF(order);
        return NULL;
    }
    if (order) {   /* last: the graph runs Python code, which may run probes */
        PyObject *r = PyObject_Call(lock_order, order, NULL);
        Py_DECREF(order);
        if (!r) PyErr_WriteUnraisable(lock_order);   /* never into the program's `with` */
        Py_XDECREF(r);
    }
    Py_RETURN_NONE;
}

PyObject *fast_acquire(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "acquire(sync, site)"); return NULL; }
    return sync_event(args[0], 1, 1, (uint32_t)site_of(args[1]));
}

PyObject *fast_release(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "release(sync, site)"); return NULL; }
    return sync_event(args[0], 0, 1, (uint32_t)site_of(args[1]));
}

PyObject *fast_happens_after(PyObject *m, PyObject *obj) { return sync_event(obj, 1, 0, 0); }
PyObject *fast_happens_before(PyObject *m, PyObject *obj) { return sync_event(obj, 0, 0, 0); }

PyObject *fast_thread_end(PyObject *m, PyObject *obj) { return sync_event(obj, 0, 0, 0); }

/* The lock proxy used at instrumented call sites. */

typedef struct {
    PyObject_HEAD
    PyObject *obj, *target;
    long site;
} SyncProxy;

static void proxy_dealloc(SyncProxy *self) {
    Py_XDECREF(self->obj);
    Py_XDECREF(self->target);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *proxy_call(SyncProxy *self, const char *name, PyObject *args, PyObject *kw) {
    PyObject *method = PyObject_GetAttrString(self->obj, name);
    if (!method) return NULL;
    PyObject *result = PyObject_Call(method, args, kw);
    Py_DECREF(method);
    return result;
}

static PyObject *proxy_acquire(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *got = proxy_call(self, "acquire", args, kw);
    if (!got) return NULL;
    int ok = PyObject_IsTrue(got);
    if (ok > 0) {
        PyObject *r = sync_event(self->target, 1, 1, (uint32_t)self->site);
        if (!r) { Py_DECREF(got); return NULL; }
        Py_DECREF(r);
    }
    return got;
}

/* The release is recorded first: a Python-level release (Condition) could switch threads
 * between the real release and its recording and let a waiter in unordered. */
static PyObject *proxy_release(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *r = sync_event(self->target, 0, 1, (uint32_t)self->site);
    if (!r) return NULL;
    Py_DECREF(r);
    return proxy_call(self, "release", args, kw);
}

static PyObject *proxy_enter(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *result = proxy_call(self, "__enter__", args, kw);
    if (!result) return NULL;
    PyObject *r = sync_event(self->target, 1, 1, (uint32_t)self->site);
    if (!r) { Py_DECREF(result); return NULL; }
    Py_DECREF(r);
    return result;
}

static PyObject *proxy_exit(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *r = sync_event(self->target, 0, 1, (uint32_t)self->site);
    if (!r) return NULL;
    Py_DECREF(r);
    return proxy_call(self, "__exit__", args, kw);
}

static PyMethodDef proxy_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))proxy_acquire, METH_VARARGS | METH_KEYWORDS, NULL},
    {"release", (PyCFunction)(void (*)(void))proxy_release, METH_VARARGS | METH_KEYWORDS, NULL},
    {"__enter__", (PyCFunction)(void (*)(void))proxy_enter, METH_VARARGS | METH_KEYWORDS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))proxy_exit, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL},
};

PyTypeObject SyncProxyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racewatch.runtime._fast.SyncProxy",
    .tp_basicsize = sizeof(SyncProxy),
    .tp_dealloc = (destructor)proxy_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Stands in for a lock at an instrumented with/acquire/release call site.",
    .tp_methods = proxy_methods,
};

PyObject *fast_sync(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "sync(obj, site)"); return NULL; }
    PyObject *obj = args[0];
    PyTypeObject *tp = Py_TYPE(obj);
    int i = 0;
    while (i < nproxied && proxied[i] != tp) i++;
    if (i == nproxied) return Py_NewRef(obj);   /* not a lock: by far the common case */
    PyObject *how = PyDict_GetItemWithError(proxy_types, (PyObject *)tp);
    if (!how) {
        if (PyErr_Occurred()) return NULL;
        Py_INCREF(obj);
        return obj;
    }
    PyObject *target = how == Py_None ? (Py_INCREF(obj), obj) : PyObject_CallOneArg(how, obj);
    if (!target) return NULL;
    SyncProxy *proxy = PyObject_New(SyncProxy, &SyncProxyType);
    if (!proxy) { Py_DECREF(target); return NULL; }
    Py_INCREF(obj);
    proxy->obj = obj;
    proxy->target = target;
    proxy->site = PyLong_AsLong(args[1]);
    return (PyObject *)proxy;
}

PyObject *fast_sync_name(PyObject *m, PyObject *id) {
    Py_ssize_t i = PyLong_AsSsize_t(id);
    if (i <= 0 || i >= PyList_GET_SIZE(sync_names)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *name = PyList_GET_ITEM(sync_names, i);
    Py_INCREF(name);
    return name;
}

int sync_init(void) {
    sync_names = PyList_New(0);
    if (!sync_names || PyList_Append(sync_names, Py_None) < 0) return -1;   /* no M0 */
    return PyType_Ready(&SyncProxyType);
}
