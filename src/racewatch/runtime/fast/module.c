/* THE hot path in C: FastTrack over the probes' events (twin of runtime/api.py). This file is
 * the module: its configuration, its control functions and its method table; fast.h says
 * which file does what. */
#include "fast.h"

/* Set by configure(), before the program's threads probe (it runs when racewatch starts):
 * objects that code may call or hold are read through config_ref, under the config lock. */
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

static Lock config_lock;    /* the objects above, and site_kinds' growth (a leaf) */

PyObject *config_ref(PyObject **slot) {
    LOCK(&config_lock);
    PyObject *obj = Py_XNewRef(*slot);
    UNLOCK(&config_lock);
    return obj;
}

int dict_get_ref(PyObject *dict, PyObject *key, PyObject **value) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_GetItemRef(dict, key, value);
#else
    *value = Py_XNewRef(PyDict_GetItemWithError(dict, key));
    return *value ? 1 : PyErr_Occurred() ? -1 : 0;
#endif
}

/* Replace a configured object; the old one is released with no lock held. */
static void config_set(PyObject **slot, PyObject *obj) {
    LOCK(&config_lock);
    PyObject *old = *slot;
    STORE(slot, obj);   /* fast paths test it without the lock */
    UNLOCK(&config_lock);
    Py_XDECREF(old);
}

static PyObject *fast_configure(PyObject *m, PyObject *args, PyObject *kw) {
    static char *names[] = {"on_race", "history_full", "ignored_types", "shape", "accessors",
                            "deque_type", "defaultdict_type", "lock_order", "items", NULL};
    PyObject *race = Py_None, *ignored = NULL, *shape = NULL, *items = NULL;
    PyObject *table = NULL, *deque = NULL, *ddict = NULL, *order = Py_None;
    int full = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OpOOOOOOO", names, &race, &full, &ignored,
                                     &shape, &table, &deque, &ddict, &order, &items))
        return NULL;
    config_set(&on_race, race == Py_None ? NULL : Py_NewRef(race));
    config_set(&lock_order, order == Py_None ? NULL : Py_NewRef(order));
    history_full = full;
    PyObject *tuple = ignored ? PySequence_Tuple(ignored) : PyTuple_New(0);
    if (!tuple) return NULL;
    config_set(&ignored_types, tuple);
    if (shape) config_set(&shape_key, Py_NewRef(shape));
    if (items) config_set(&items_key, Py_NewRef(items));
    if (deque && PyType_Check(deque)) {
        deque_type = (PyTypeObject *)Py_NewRef(deque);
        hook_dealloc(deque_type, 0);
    }
    if (ddict && PyType_Check(ddict)) {
        defaultdict_type = (PyTypeObject *)Py_NewRef(ddict);
        hook_dealloc(defaultdict_type, 0);
    }
    if (table && PyDict_Check(table)) {   /* {builtin: (is_write, how)}, as in locations.py */
        static const char *hows[] = {"attr", "shape", "bulk", "copy"};   /* HOW_* */
        Py_ssize_t pos = 0;
        PyObject *func, *spec;
        int count = 0;
        STORE_REL(&naccessors, 0);
        memset(accessor_slots, 0, sizeof(accessor_slots));
        while (PyDict_Next(table, &pos, &func, &spec) && count < MAX_ACCESSORS) {
            PyObject *how = PyTuple_GetItem(spec, 1);
            if (!how) return NULL;
            int which = -1;
            for (int h = 0; h < 4; h++)
                if (PyUnicode_CompareWithASCIIString(how, hows[h]) == 0) which = h;
            if (which < 0) {
                PyErr_Format(PyExc_ValueError, "accessor kind %R", how);
                return NULL;
            }
            accessors[count].func = Py_NewRef(func);
            accessors[count].is_write = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 0));
            accessors[count].how = which;
            size_t slot = ACCESSOR_SLOT(func);
            while (accessor_slots[slot]) slot = (slot + 1) & (ACCESSOR_SLOTS - 1);
            accessor_slots[slot] = func;   /* MAX_ACCESSORS < ACCESSOR_SLOTS: never full */
            count++;
        }
        STORE_REL(&naccessors, count);
    }
    Py_RETURN_NONE;
}

/* Kinds of new sites, from any importing thread. The table is remade, never changed in place
 * where probes may be reading it: the old one is retired, and the size published last. */
static PyObject *fast_register_sites(PyObject *m, PyObject *args) {
    Py_ssize_t base;
    Py_buffer kinds;
    if (!PyArg_ParseTuple(args, "ny*", &base, &kinds)) return NULL;
    ThreadState *t = current();
    if (!t) { PyBuffer_Release(&kinds); return NULL; }
    LOCK(&config_lock);
    size_t n = nsite_kinds, need = (size_t)base + (size_t)kinds.len;
    if (need < n) need = n;
    uint8_t *k = PyMem_RawMalloc(need ? need : 1);
    if (k) {
        memcpy(k, site_kinds, n);
        memset(k + n, 0, need - n);
        memcpy(k + base, kinds.buf, kinds.len);
        uint8_t *old = site_kinds;
        STORE_REL(&site_kinds, k);
        STORE_REL(&nsite_kinds, need);
        retire(old, PyMem_RawFree);
    }
    UNLOCK(&config_lock);
    PyBuffer_Release(&kinds);
    if (!k) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *fast_current_tid(PyObject *m, PyObject *noargs) {
    ThreadState *t = current();
    return t ? PyLong_FromUnsignedLong(t->tid) : NULL;
}

/* In a fork child only the forking thread survives: start over with it as thread 0. Locks
 * another thread held at the fork are free again. */
static PyObject *fast_reset_after_fork(PyObject *m, PyObject *noargs) {
    memset(&config_lock, 0, sizeof(config_lock));
    guards_after_fork();
    locks_after_fork();
    depot_after_fork();
    readsets_after_fork();
    forget_threads();
    if (!current()) return NULL;
    void **all = PyMem_RawMalloc(sizeof(void *) * (table_count(&objects) +
                                                   table_count(&syncs) + 1));
    if (!all) return PyErr_NoMemory();
    size_t n = table_take_all(&objects, all);
    n += table_take_all(&syncs, all + n);
    strong_after_fork();
    free_all((Tracked **)all, n);
    PyMem_RawFree(all);
    forget_locks();
    report_after_fork();
    Py_RETURN_NONE;
}

static PyObject *fast_referent(PyObject *m, PyObject *obj) {
    PyObject *r = PyWeakref_CheckProxy(obj) ? weak_target(obj) : NULL;
    return r ? r : Py_NewRef(Py_None);
}

static PyObject *fast_stats(PyObject *m, PyObject *noargs) {
    size_t cells = 0, capacity = 0, bytes = 0, compact = 0;
    ThreadState *t = current();
    if (!t) return NULL;
    ebr_enter(t);
    for (size_t s = 0; s < (1u << SHARD_BITS); s++) {
        Shard *shard = &objects.shards[s];
        LOCK(&shard->lock);
        for (size_t i = 0; shard->map.arr && i < shard->map.arr->cap; i++) {
            Slot *slot = &shard->map.arr->slots[i];
            if (!slot_live(slot)) continue;
            const Record *rec = slot->value;
            cells += LOAD(&rec->head.ncells);
            capacity += rec->capcells;
            const Index *index = LOAD(&rec->index);
            int full = LOAD_ACQ(&rec->full) != NULL;
            bytes += RECORD_SIZE(rec->capcells) + (full ? FULL_SIZE(rec->capcells) : 0) +
                     (index ? sizeof(Index) + index->cap * sizeof(uint32_t) : 0);
            compact += !full;
        }
        UNLOCK(&shard->lock);
    }
    ebr_exit(t);
    size_t retired, retired_peak, sets, set_bytes, table_bytes = 0;
    retired_counts(&retired, &retired_peak);
    readset_counts(&sets, &set_bytes);
    for (size_t s = 0; s < (1u << SHARD_BITS); s++) {
        LOCK(&objects.shards[s].lock);
        const Slots *arr = objects.shards[s].map.arr;
        table_bytes += arr ? sizeof(Slots) + arr->cap * sizeof(Slot) : 0;
        UNLOCK(&objects.shards[s].lock);
    }
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:I,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}",
                         "shadow_bytes",
                         (Py_ssize_t)LOAD(&shadow_bytes), "shadow_peak",
                         (Py_ssize_t)LOAD(&shadow_peak),
                         "objects", (Py_ssize_t)table_count(&objects),
                         "syncs", (Py_ssize_t)table_count(&syncs),
                         "strong", (Py_ssize_t)LOAD(&nstrong),
                         "threads", LOAD(&nthreads), "cells", (Py_ssize_t)cells,
                         "cell_capacity", (Py_ssize_t)capacity, "record_bytes",
                         (Py_ssize_t)bytes, "compact_records", (Py_ssize_t)compact,
                         "table_bytes", (Py_ssize_t)table_bytes, "readsets", (Py_ssize_t)sets,
                         "readset_bytes", (Py_ssize_t)set_bytes, "retired", (Py_ssize_t)retired,
                         "retired_peak", (Py_ssize_t)retired_peak);
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
    {"note_dict", fast_note_dict, METH_O, "obj.__dict__ was read: its keys are obj's attributes."},
    {"alias_owner", fast_alias_owner, METH_O, "The instance whose __dict__ dict is, or None."},
    {NULL},
};

/* The runtime's state is the process's (the tables follow objects, not modules): it is made
 * once, whatever number of times the module is executed. */
static int exec_module(PyObject *m) {
    static int ready;
    if (!ready) {
        if (guards_init() < 0 || lifetime_init() < 0 || tokens_init() < 0 ||
            attributes_init() < 0 || depot_init() < 0 || locations_init() < 0)
            return -1;
        reported = PyDict_New();
        ignored_types = PyTuple_New(0);
        shape_key = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);   /* until configured */
        items_key = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
        if (!reported || !ignored_types || !shape_key || !items_key) return -1;
        ready = 1;
    }
    /* how the lock hooks (runtime/_locks.c) reach this runtime without a Python call */
    PyObject *sink = locks_sink_capsule();
    if (!sink || PyModule_AddObject(m, "lock_sink", sink) < 0) {
        Py_XDECREF(sink);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil   /* 3.13+: every piece of shared state has its own lock or atomics */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "racewatch.runtime._fast",
    "THE hot path in C: FastTrack over the probes' events.", 0, module_methods, module_slots,
};

PyMODINIT_FUNC PyInit__fast(void) { return PyModuleDef_Init(&module_def); }
