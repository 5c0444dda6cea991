/* The shadow map's tie to object lifetimes: which object has a record or a sync var, and how
 * each is freed when its object dies (a wrapped deallocator, a weakref callback, or a sweep of
 * objects only the table still holds). */
#include "fast.h"

Map objects, syncs;
size_t shadow_bytes, shadow_peak;   /* records and sync vars allocated: for stats() */

void account(Py_ssize_t delta) {
    shadow_bytes += (size_t)delta;
    if (shadow_bytes > shadow_peak) shadow_peak = shadow_bytes;
}

Tracked **strong_list;      /* tracked objects that hold their object */
size_t nstrong, capstrong, strong_since_sweep;

PyTypeObject RefType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racewatch.runtime._fast.Ref",
    .tp_basicsize = sizeof(Ref),
    .tp_flags = Py_TPFLAGS_DEFAULT,   /* GC support and traversal are inherited */
    .tp_doc = "A weak reference whose death frees racewatch's shadow state of its object.",
};

/* Addresses that ever had a record freed by a wrapped deallocator, as bits: most objects that
 * die were never tracked, and this spares their deallocation a lookup in the tables. */
#define DEATH_BITS (1u << 20)
static uint8_t death_filter[DEATH_BITS / 8];

static inline size_t death_bit(uintptr_t addr) { return (addr >> 4) & (DEATH_BITS - 1); }
static inline void death_note(uintptr_t addr) {
    death_filter[death_bit(addr) >> 3] |= (uint8_t)(1u << (death_bit(addr) & 7));
}
static inline int death_maybe(uintptr_t addr) {
    return death_filter[death_bit(addr) >> 3] & (1u << (death_bit(addr) & 7));
}

static PyObject *died_callback;   /* C function: called with the dead Ref */
static PyObject *weakrefable_no;  /* set of types that refused a weakref */

/* Release a tracker; its Python references go to `defer` when given (released later by the
 * caller: releasing runs finalizers, which may call back into the runtime). */
static void free_tracked(Tracked *tr, PyObject **defer, size_t *ndefer) {
    if (tr->kind == KIND_RECORD) {
        Record *rec = (Record *)tr;
        account(-(Py_ssize_t)RECORD_SIZE(rec->capcells, rec->head.compact));
        for (uint32_t i = 0; i < rec->head.ncells; i++) {
            PyObject *held = untag(rec->keys[i]);
            if (defer) defer[(*ndefer)++] = held; else Py_XDECREF(held);
            if (!rec->head.compact && EPOCHS(rec)[i].r == SHARED_READS)
                PyMem_RawFree(COLD(rec)[i].r.shared);
        }
        PyMem_RawFree(rec->index);
    } else {
        account(-(Py_ssize_t)sizeof(SyncVar));
        if (((SyncVar *)tr)->id) lock_var_died((SyncVar *)tr);
        PyMem_RawFree(((SyncVar *)tr)->vc.c);
    }
    if (tr->ref && !tr->strong) ((Ref *)tr->ref)->owner = NULL;   /* hooked: ref is NULL */
    PyObject *ref = tr->ref;
    PyMem_Free(tr);
    if (defer) defer[(*ndefer)++] = ref; else Py_XDECREF(ref);
}

static size_t tracked_refs(Tracked *tr) {   /* how many references free_tracked defers */
    return 1 + (tr->kind == KIND_RECORD ? ((Record *)tr)->head.ncells : 0);
}

static PyObject *ref_died(PyObject *module, PyObject *wr) {
    Ref *ref = (Ref *)wr;
    Tracked *tr = ref->owner;
    if (tr) {
        Map *m = tr->kind == KIND_RECORD ? &objects : &syncs;
        if (map_get(m, ref->addr) == tr) map_del(m, ref->addr);
        ref->owner = NULL;
        tr->ref = NULL;   /* the Ref is being released by its referent's death */
        free_tracked(tr, NULL, NULL);
        Py_DECREF(wr);    /* the reference the tracker held */
    }
    Py_RETURN_NONE;
}

static PyMethodDef died_def = {"_died", ref_died, METH_O, NULL};

/* ---- lifetime through deallocators: the tp_dealloc of a few static types is wrapped --------
 * object, dict, list, set, bytearray, cell, deque, defaultdict. The shadow state of an object
 * whose deallocation ends in one of them is freed in the same call that frees the object, and
 * racewatch holds no reference to it. That covers instances of classes written in Python
 * (subtype_dealloc ends in the nearest non-heap base's deallocator, object's for most) and the
 * builtin containers, which cannot be weakly referenced. Heap types themselves are never
 * wrapped: subtype_dealloc finds its base by comparing tp_dealloc pointers. Everything else
 * gets a weakref whose C callback frees the state, or as a last resort a strong reference and
 * a sweep. */

#define MAX_HOOKED 8
static struct { PyTypeObject *type; destructor original; } hooked[MAX_HOOKED];
static int nhooked;
static Map death_watch;    /* addresses the Python twin asked to hear about */
static PyObject *deaths;   /* ids of watched objects that died, until the twin drains them */

static void forget(Map *m, PyObject *op) {
    Tracked *tr = map_get(m, (uintptr_t)op);
    if (tr && tr->hooked) {
        map_del(m, (uintptr_t)op);
        free_tracked(tr, NULL, NULL);
    }
}

static void note_death(PyObject *op) {
    if (!death_maybe((uintptr_t)op)) return;
    if (objects.used) forget(&objects, op);
    if (syncs.used) forget(&syncs, op);
    if (death_watch.used && map_get(&death_watch, (uintptr_t)op)) {
        map_del(&death_watch, (uintptr_t)op);
        PyObject *id = PyLong_FromVoidPtr(op);   /* an int: no GC, no finalizer */
        if (!id || PyList_Append(deaths, id) < 0) PyErr_Clear();
        Py_XDECREF(id);
    }
}

/* One wrapper per hooked type, each calling the deallocator of the slot it replaced: a type's
 * deallocator may call its base's slot directly (defaultdict calls PyDict_Type.tp_dealloc), so
 * the object's own type does not tell which original to run. */
#define HOOK(i) static void hooked_dealloc_##i(PyObject *op) { \
    note_death(op); hooked[i].original(op); }
HOOK(0) HOOK(1) HOOK(2) HOOK(3) HOOK(4) HOOK(5) HOOK(6) HOOK(7)
static destructor const hooks[MAX_HOOKED] = {
    hooked_dealloc_0, hooked_dealloc_1, hooked_dealloc_2, hooked_dealloc_3,
    hooked_dealloc_4, hooked_dealloc_5, hooked_dealloc_6, hooked_dealloc_7};

static destructor subtype_dealloc_fn;   /* CPython's deallocator of heap types */

/* Whether an instance of `tp` is freed through one of the wrapped deallocators. */
static int dies_through_hook(PyTypeObject *tp) {
    while (tp && subtype_dealloc_fn && tp->tp_dealloc == subtype_dealloc_fn) tp = tp->tp_base;
    if (!tp) return 0;
    for (int i = 0; i < nhooked; i++)
        if (tp->tp_dealloc == hooks[i]) return 1;
    return 0;
}

void hook_dealloc(PyTypeObject *tp) {
    if (!tp || nhooked == MAX_HOOKED || (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return;
    for (int i = 0; i < nhooked; i++) if (hooked[i].type == tp) return;
    hooked[nhooked].type = tp;
    hooked[nhooked].original = tp->tp_dealloc;
    tp->tp_dealloc = hooks[nhooked];
    nhooked++;
}

/* Make the Tracked for `obj`. Allocates Python objects (so GC may run): call with no table
 * pointer held, then insert with tracked_insert. Trackers come from pymalloc (the GIL is held
 * wherever one is made or freed): no per-block header, and size classes 16 bytes apart. */
Tracked *tracked_new(PyObject *obj, uint8_t kind) {
    uint32_t cap = kind == KIND_RECORD ? first_cells(Py_TYPE(obj)) : 0;
    size_t size = kind == KIND_RECORD ? RECORD_SIZE(cap, 1) : sizeof(SyncVar);
    Tracked *tr = PyMem_Calloc(1, size);
    if (!tr) { PyErr_NoMemory(); return NULL; }
    account((Py_ssize_t)size);
    if (kind == KIND_RECORD) {
        ((Record *)tr)->capcells = cap;
        tr->compact = 1;
    }
    tr->kind = kind;
    if (dies_through_hook(Py_TYPE(obj))) {   /* its death is seen without any reference */
        tr->hooked = 1;
        death_note((uintptr_t)obj);
        return tr;
    }
    int refusing = PySet_Contains(weakrefable_no, (PyObject *)Py_TYPE(obj));
    if (refusing < 0) { PyMem_Free(tr); return NULL; }
    if (!refusing) {
        PyObject *ref = PyObject_CallFunctionObjArgs((PyObject *)&RefType, obj, died_callback,
                                                     NULL);
        if (ref) {
            ((Ref *)ref)->owner = tr;
            ((Ref *)ref)->addr = (uintptr_t)obj;
            tr->ref = ref;
            return tr;
        }
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) { PyMem_Free(tr); return NULL; }
        PyErr_Clear();
        if (PySet_Add(weakrefable_no, (PyObject *)Py_TYPE(obj)) < 0) {
            PyMem_Free(tr);
            return NULL;
        }
    }
    Py_INCREF(obj);
    tr->ref = obj;
    tr->strong = 1;
    return tr;
}

/* Insert, unless a nested call made one meanwhile: then drop ours and return that one. */
Tracked *tracked_insert(Map *m, PyObject *obj, Tracked *tr) {
    Tracked *existing = map_get(m, (uintptr_t)obj);
    if (existing) {
        free_tracked(tr, NULL, NULL);
        return existing;
    }
    if (map_put(m, (uintptr_t)obj, tr) < 0) { free_tracked(tr, NULL, NULL); return NULL; }
    if (tr->strong) {
        if (nstrong == capstrong) {
            size_t cap = capstrong ? capstrong * 2 : 256;
            Tracked **a = PyMem_RawRealloc(strong_list, cap * sizeof(*a));
            if (!a) return tr;   /* not swept: a leak, never a wrong answer */
            strong_list = a;
            capstrong = cap;
        }
        strong_list[nstrong++] = tr;
        strong_since_sweep++;
    }
    return tr;
}

/* Free trackers, releasing their Python references only after all of them are out of the
 * tables: releasing runs finalizers, which may call back into the runtime. */
void free_all(Tracked **list, size_t n) {
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++) nrefs += tracked_refs(list[i]);
    PyObject **refs = PyMem_RawMalloc(sizeof(PyObject *) * (nrefs + 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) free_tracked(list[i], refs, &k);
    for (size_t i = 0; refs && i < k; i++) Py_XDECREF(refs[i]);
    PyMem_RawFree(refs);
}

/* Drop strongly held objects nobody else references (called at the start of a probe). */
void sweep(void) {
    strong_since_sweep = 0;
    Tracked **dead = PyMem_RawMalloc(sizeof(Tracked *) * (nstrong + 1));
    if (!dead) return;
    size_t ndead = 0, kept = 0;
    for (size_t i = 0; i < nstrong; i++) {
        Tracked *tr = strong_list[i];
        if (Py_REFCNT(tr->ref) == 1) {
            Map *m = tr->kind == KIND_RECORD ? &objects : &syncs;
            if (map_get(m, (uintptr_t)tr->ref) == tr) map_del(m, (uintptr_t)tr->ref);
            dead[ndead++] = tr;
        } else {
            strong_list[kept++] = tr;
        }
    }
    nstrong = kept;
    free_all(dead, ndead);
    PyMem_RawFree(dead);
}

/* For the Python twin: hear about the death of an object that cannot be weakly referenced. */
PyObject *fast_watch_death(PyObject *m, PyObject *obj) {
    if (!dies_through_hook(Py_TYPE(obj))) Py_RETURN_FALSE;
    if (map_put(&death_watch, (uintptr_t)obj, obj) < 0) return NULL;
    death_note((uintptr_t)obj);
    Py_RETURN_TRUE;
}

PyObject *fast_deaths(PyObject *m, PyObject *noargs) {
    if (!PyList_GET_SIZE(deaths)) Py_RETURN_NONE;
    PyObject *drained = deaths;
    deaths = PyList_New(0);
    if (!deaths) { deaths = drained; return NULL; }
    return drained;
}

/* The death callback, the set of types that refuse weakrefs, and the wrapped deallocators. */
int lifetime_init(void) {
    RefType.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&RefType) < 0) return -1;
    died_callback = PyCFunction_New(&died_def, NULL);
    weakrefable_no = PySet_New(NULL);
    deaths = PyList_New(0);
    if (!died_callback || !weakrefable_no || !deaths) return -1;
    /* a throwaway class tells which deallocator heap types use */
    PyObject *probe_class = PyObject_CallFunction((PyObject *)&PyType_Type, "s()N",
                                                  "_racewatch_probe", PyDict_New());
    if (!probe_class) return -1;
    subtype_dealloc_fn = ((PyTypeObject *)probe_class)->tp_dealloc;
    Py_DECREF(probe_class);
    hook_dealloc(&PyBaseObject_Type);
    hook_dealloc(&PyDict_Type);
    hook_dealloc(&PyList_Type);
    hook_dealloc(&PySet_Type);
    hook_dealloc(&PyByteArray_Type);
    hook_dealloc(&PyCell_Type);
    return 0;
}
