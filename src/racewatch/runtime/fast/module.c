/* THE hot path in C: FastTrack over the probes' events (twin of runtime/api.py). This file is
 * the module: its configuration, its control functions and its method table; fast.h says
 * which file does what. */
#include "fast.h"

/* Set by configure(). */
uint8_t *site_kinds;
size_t nsite_kinds;
PyObject *on_race;          /* callable(event) or NULL */
PyObject *ignored_types;    /* tuple of types whose instances are never shared */
PyObject *shape_key;        /* the key of a container's shape (locations.SHAPE) */
PyObject *items_key;        /* the key of a dict's values (locations.ITEMS) */
PyTypeObject *deque_type;   /* collections.deque */
PyTypeObject *defaultdict_type;   /* collections.defaultdict */
int history_full;
PyObject *lock_order;       /* callable(tid, held, held_wheres, lock, where), or NULL: off */

Accessor accessors[MAX_ACCESSORS];
int naccessors;
PyObject *accessor_slots[ACCESSOR_SLOTS];

static PyObject *fast_configure(PyObject *m, PyObject *args, PyObject *kw) {
    static char *names[] = {"on_race", "history_full", "ignored_types", "shape", "accessors",
                            "deque_type", "defaultdict_type", "lock_order", "items", NULL};
    PyObject *race = Py_None, *ignored = NULL, *shape = NULL, *items = NULL;
    PyObject *table = NULL, *deque = NULL, *ddict = NULL, *order = Py_None;
    int full = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OpOOOOOOO", names, &race, &full, &ignored,
                                     &shape, &table, &deque, &ddict, &order, &items))
        return NULL;
    Py_XSETREF(on_race, race == Py_None ? NULL : Py_NewRef(race));
    Py_XSETREF(lock_order, order == Py_None ? NULL : Py_NewRef(order));
    history_full = full;
    PyObject *tuple = ignored ? PySequence_Tuple(ignored) : PyTuple_New(0);
    if (!tuple) return NULL;
    Py_XSETREF(ignored_types, tuple);
    if (shape) Py_XSETREF(shape_key, Py_NewRef(shape));
    if (items) Py_XSETREF(items_key, Py_NewRef(items));
    if (deque && PyType_Check(deque)) {
        deque_type = (PyTypeObject *)Py_NewRef(deque);
        hook_dealloc(deque_type);
    }
    if (ddict && PyType_Check(ddict)) {
        defaultdict_type = (PyTypeObject *)Py_NewRef(ddict);
        hook_dealloc(defaultdict_type);
    }
    if (table && PyDict_Check(table)) {   /* {builtin: (is_write, how)}, as in locations.py */
        static const char *hows[] = {"attr", "shape", "bulk", "copy"};   /* HOW_* */
        Py_ssize_t pos = 0;
        PyObject *func, *spec;
        naccessors = 0;
        memset(accessor_slots, 0, sizeof(accessor_slots));
        while (PyDict_Next(table, &pos, &func, &spec) && naccessors < MAX_ACCESSORS) {
            PyObject *how = PyTuple_GetItem(spec, 1);
            if (!how) return NULL;
            int which = -1;
            for (int h = 0; h < 4; h++)
                if (PyUnicode_CompareWithASCIIString(how, hows[h]) == 0) which = h;
            if (which < 0) {
                PyErr_Format(PyExc_ValueError, "accessor kind %R", how);
                return NULL;
            }
            accessors[naccessors].func = Py_NewRef(func);
            accessors[naccessors].is_write = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 0));
            accessors[naccessors].how = which;
            size_t slot = ACCESSOR_SLOT(func);
            while (accessor_slots[slot]) slot = (slot + 1) & (ACCESSOR_SLOTS - 1);
            accessor_slots[slot] = func;   /* MAX_ACCESSORS < ACCESSOR_SLOTS: never full */
            naccessors++;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *fast_register_sites(PyObject *m, PyObject *args) {
    Py_ssize_t base;
    Py_buffer kinds;
    if (!PyArg_ParseTuple(args, "ny*", &base, &kinds)) return NULL;
    size_t need = (size_t)base + (size_t)kinds.len;
    if (need > nsite_kinds) {
        uint8_t *k = PyMem_RawRealloc(site_kinds, need);
        if (!k) { PyBuffer_Release(&kinds); return PyErr_NoMemory(); }
        memset(k + nsite_kinds, 0, need - nsite_kinds);
        site_kinds = k;
        nsite_kinds = need;
    }
    memcpy(site_kinds + base, kinds.buf, kinds.len);
    PyBuffer_Release(&kinds);
    Py_RETURN_NONE;
}

static PyObject *fast_current_tid(PyObject *m, PyObject *noargs) {
    ThreadState *t = current();
    return t ? PyLong_FromUnsignedLong(t->tid) : NULL;
}

static PyObject *fast_races(PyObject *m, PyObject *noargs) { return PyDict_Copy(reported); }

static size_t take_all(Map *m, Tracked **into) {
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) into[n++] = m->slots[i].value;
    map_clear(m);
    return n;
}

/* In a fork child only the forking thread survives: start over with it as thread 0. */
static PyObject *fast_reset_after_fork(PyObject *m, PyObject *noargs) {
    forget_threads();
    if (!current()) return NULL;
    Tracked **all = PyMem_RawMalloc(sizeof(Tracked *) * (objects.used + syncs.used + 1));
    if (!all) return PyErr_NoMemory();
    size_t n = take_all(&objects, all);
    n += take_all(&syncs, all + n);
    PyMem_RawFree(strong_list);
    strong_list = NULL;
    nstrong = capstrong = strong_since_sweep = 0;
    free_all(all, n);
    PyMem_RawFree(all);
    forget_locks();
    PyDict_Clear(reported);
    Py_RETURN_NONE;
}

static PyObject *fast_referent(PyObject *m, PyObject *obj) {
    PyObject *r = PyWeakref_CheckProxy(obj) ? weak_target(obj) : NULL;
    return Py_NewRef(r ? r : Py_None);
}

static PyObject *fast_stats(PyObject *m, PyObject *noargs) {
    size_t cells = 0, capacity = 0, bytes = 0, compact = 0;
    for (size_t i = 0; i < objects.cap; i++) {
        Record *rec = objects.slots[i].value;
        if (!objects.slots[i].key) continue;
        cells += rec->head.ncells;
        capacity += rec->capcells;
        bytes += RECORD_SIZE(rec->capcells, rec->head.compact) +
                 (rec->index ? sizeof(Index) + rec->index->cap * sizeof(uint32_t) : 0);
        compact += rec->head.compact;
    }
    return Py_BuildValue("{s:n,s:n,s:n,s:I,s:n,s:n,s:n,s:n,s:n,s:n}", "shadow_bytes",
                         (Py_ssize_t)shadow_bytes, "shadow_peak", (Py_ssize_t)shadow_peak,
                         "objects", (Py_ssize_t)objects.used,
                         "syncs", (Py_ssize_t)syncs.used, "strong", (Py_ssize_t)nstrong,
                         "threads", nthreads, "cells", (Py_ssize_t)cells,
                         "cell_capacity", (Py_ssize_t)capacity, "record_bytes",
                         (Py_ssize_t)bytes, "compact_records", (Py_ssize_t)compact);
}

#define FAST(name, doc) {#name, (PyCFunction)(void (*)(void))fast_##name, METH_FASTCALL, doc}

static PyMethodDef module_methods[] = {
    FAST(read, "read(obj, key, site): a plain read of the location (obj, key)."),
    FAST(write, "write(obj, key, site): a plain write of the location (obj, key)."),
    FAST(call, "call(func, a0, a1, site): if func is a builtin accessor, its access."),
    FAST(lock_acquired, "lock_acquired(lock, flags, count): a lock was acquired."),
    FAST(lock_released, "lock_released(lock, flags, count): a lock is about to be released."),
    FAST(token, "token(site, is_write, key, hit=None): the constant of a token probe site; "
         "with a hit token, it also counts the run of its line (a merged probe)."),
    {"enable", fast_enable, METH_O, "enable(flag): token probes record (True) or not."},
    {"happens_before", fast_happens_before, METH_O, "Release-like edge on obj."},
    {"happens_after", fast_happens_after, METH_O, "Acquire-like edge on obj."},
    {"thread_end", fast_thread_end, METH_O, "The calling thread ends; obj is its Thread."},
    {"configure", (PyCFunction)(void (*)(void))fast_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(on_race, history_full, ignored_types, shape, accessors, deque_type, "
     "defaultdict_type, lock_order, items)."},
    {"register_sites", fast_register_sites, METH_VARARGS, "register_sites(base, kinds)."},
    {"current_tid", fast_current_tid, METH_NOARGS, "The calling thread's id (0: main)."},
    {"races", fast_races, METH_NOARGS, "{(site, site): count} of racing site pairs."},
    {"sync_name", fast_sync_name, METH_O, "(type, address) of lock M<id>, or None."},
    {"dead_locks", fast_dead_locks, METH_NOARGS, "ids of locks that died since (or None)."},
    {"semaphore_locks", fast_semaphore_locks, METH_NOARGS,
     "ids of locks that became semaphores since (or None)."},
    {"reset_after_fork", fast_reset_after_fork, METH_NOARGS, "Start over in a fork child."},
    {"stats", fast_stats, METH_NOARGS, "Sizes of the runtime's tables."},
    {"watch_death", fast_watch_death, METH_O,
     "Note obj's death (for objects that cannot be weakly referenced); False if not possible."},
    {"referent", fast_referent, METH_O, "What a weakref.proxy stands for, or None."},
    {"instance_dict", fast_instance_dict, METH_O,
     "obj's own __dict__ (made if its attributes are inline), or None."},
    {"deaths", fast_deaths, METH_NOARGS, "ids of watched objects that died since (or None)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "racewatch.runtime._fast",
    "THE hot path in C: FastTrack over the probes' events.", -1, module_methods,
};


PyMODINIT_FUNC PyInit__fast(void) {
    if (lifetime_init() < 0 || tokens_init() < 0 || attributes_init() < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    reported = PyDict_New();
    ignored_types = PyTuple_New(0);
    shape_key = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);   /* until configured */
    items_key = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (!reported || !ignored_types || !shape_key || !items_key || depot_init() < 0 ||
        locations_init() < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* how the lock hooks (runtime/_locks.c) reach this runtime without a Python call */
    PyObject *sink = locks_sink_capsule();
    if (!sink || PyModule_AddObject(m, "lock_sink", sink) < 0) {
        Py_XDECREF(sink);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
