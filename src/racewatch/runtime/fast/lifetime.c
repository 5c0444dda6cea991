/* The shadow map's tie to object lifetimes: which object has a record or a sync var, and how
 * each is freed when its object dies (a wrapped deallocator, a weakref callback, or a sweep of
 * objects only the table still holds). */
#include "fast.h"

Table objects, syncs;
size_t shadow_bytes, shadow_peak;   /* records and sync vars allocated: for stats() */

void account(Py_ssize_t delta) {
#ifdef RW_FREE_THREADED
    /* each thread adds to the shared total by 64 KiB at a time: a counter every allocation
     * of every thread wrote would be a cache line they all fight over */
    static __thread Py_ssize_t pending;
    pending += delta;
    if (pending < 65536 && pending > -65536) return;
    size_t now = __atomic_add_fetch(&shadow_bytes, (size_t)pending, __ATOMIC_RELAXED);
    pending = 0;
    size_t peak = LOAD(&shadow_peak);
    while (now > peak &&
           !__atomic_compare_exchange_n(&shadow_peak, &peak, now, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
#else
    shadow_bytes += (size_t)delta;
    if (shadow_bytes > shadow_peak) shadow_peak = shadow_bytes;
#endif
}

/* Objects whose tracker holds them (they refuse weakrefs and no deallocator tells of their
 * death): listed by object, which stays put while its tracker may move. */
typedef struct {
    PyObject *obj;
    uint8_t kind;
} Strong;
static Lock strong_lock;
static Strong *strong_list;
size_t nstrong, strong_since_sweep;
static size_t capstrong;

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
    uint8_t bit = (uint8_t)(1u << (death_bit(addr) & 7));
#ifdef RW_FREE_THREADED
    __atomic_fetch_or(&death_filter[death_bit(addr) >> 3], bit, __ATOMIC_RELAXED);
#else
    death_filter[death_bit(addr) >> 3] |= bit;
#endif
}
static inline int death_maybe(uintptr_t addr) {
    return LOAD(&death_filter[death_bit(addr) >> 3]) & (1u << (death_bit(addr) & 7));
}

static PyObject *died_callback;   /* C function: called with the dead Ref */
static PyObject *weakrefable_no;  /* set of types that refused a weakref */

/* Release a tracker, out of every table; its memory goes once no fast path can be reading
 * it, its Python references to `defer` (released later by the caller, with no lock held:
 * releasing runs finalizers, which may call back into the runtime). */
static void free_tracked(Tracked *tr, PyObject **defer, size_t *ndefer) {
    if (tr->kind == KIND_RECORD) {
        Record *rec = (Record *)tr;
        account(-(Py_ssize_t)(RECORD_SIZE(rec->capcells) +
                              (rec->full ? FULL_SIZE(rec->capcells) : 0)));
        for (uint32_t i = 0; i < rec->head.ncells; i++) {
            if (rec->keys[i] & TAG_DIGEST) PyMem_RawFree(untag(rec->keys[i]));
            else defer[(*ndefer)++] = untag(rec->keys[i]);
            if (rec->full && IS_SHARED(EPOCHS(rec)[i].r))
                readset_release(SHARED_OF(EPOCHS(rec)[i].r));
        }
        retire(rec->index, PyMem_RawFree);
        retire(rec->full, PyMem_Free);
    } else {
        account(-(Py_ssize_t)sizeof(SyncVar));
        if (((SyncVar *)tr)->id) lock_var_died((SyncVar *)tr);
        retire(((SyncVar *)tr)->vc.c, PyMem_RawFree);
        retire(((SyncVar *)tr)->inner_vc.c, PyMem_RawFree);
    }
    if (tr->ref && !tr->strong) ((Ref *)tr->ref)->owner = NULL;   /* hooked: ref is NULL */
    defer[(*ndefer)++] = tr->ref;
    retire(tr, PyMem_Free);
}

static size_t tracked_refs(Tracked *tr) {   /* how many references free_tracked defers */
    return 1 + (tr->kind == KIND_RECORD ? ((Record *)tr)->head.ncells : 0);
}

/* Free trackers already out of the tables, releasing their Python references only after all
 * of them are freed: releasing runs finalizers, which may call back into the runtime. */
void free_all(Tracked **list, size_t n) {
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++) nrefs += tracked_refs(list[i]);
    PyObject *on_stack[16];
    PyObject **refs = nrefs <= 16 ? on_stack : PyMem_RawMalloc(sizeof(PyObject *) * nrefs);
    if (!refs) return;   /* a leak, never a freed reference held */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) free_tracked(list[i], refs, &k);
    for (size_t i = 0; i < k; i++) Py_XDECREF(refs[i]);
    if (refs != on_stack) PyMem_RawFree(refs);
}

/* The weakref callback: `wr`'s object is being deallocated. */
static PyObject *ref_died(PyObject *module, PyObject *wr) {
    Ref *ref = (Ref *)wr;
    Lock *stripe = stripe_of((void *)ref->addr);
    LOCK(stripe);
    Tracked *tr = ref->owner;   /* under the stripe: a move updates it there */
    if (tr) {
        Table *t = tr->kind == KIND_RECORD ? &objects : &syncs;
        if (table_get(t, (void *)ref->addr) == tr) table_del(t, (void *)ref->addr);
        ref->owner = NULL;
        tr->ref = NULL;   /* the Ref is being released by its referent's death */
    }
    UNLOCK(stripe);
    if (tr) {
        free_all(&tr, 1);
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

#define MAX_HOOKED 32
static struct {
    PyTypeObject *type;
    destructor original;
    int trashcan;   /* the original defers deep deallocation chains (Py_TRASHCAN_BEGIN) */
} hooked[MAX_HOOKED];
static int nhooked;
static Lock watch_lock;    /* death_watch and deaths */
static Map death_watch;    /* addresses the Python twin asked to hear about */
static PyObject *deaths;   /* ids of watched objects that died, until the twin drains them */

/* Take `op`'s hooked tracker out of `t`, into `dead`; under op's stripe. */
static void forget(Table *t, PyObject *op, Tracked **dead, size_t *ndead) {
    Tracked *tr = table_get(t, op);
    if (tr && tr->hooked) {
        table_del(t, op);
        dead[(*ndead)++] = tr;
    }
}

static void note_death(PyObject *op) {
    if (!death_maybe((uintptr_t)op)) return;
    Tracked *dead[2];
    size_t ndead = 0;
    Lock *stripe = stripe_of(op);
    LOCK(stripe);
    forget(&objects, op, dead, &ndead);
    forget(&syncs, op, dead, &ndead);
    UNLOCK(stripe);
    free_all(dead, ndead);
    alias_instance_died(op);
    if (LOAD(&death_watch.used)) {
        LOCK(&watch_lock);
        if (map_get(&death_watch, (uintptr_t)op)) {
            map_del(&death_watch, (uintptr_t)op);
            PyObject *id = PyLong_FromVoidPtr(op);   /* an int: no GC, no finalizer */
            if (!id || PyList_Append(deaths, id) < 0) PyErr_Clear();
            Py_XDECREF(id);
        }
        UNLOCK(&watch_lock);
    }
}

/* One wrapper per hooked type, each calling the deallocator of the slot it replaced: a type's
 * deallocator may call its base's slot directly (defaultdict calls PyDict_Type.tp_dealloc), so
 * the object's own type does not tell which original to run. CPython's trashcan (3.11-3.13)
 * defers the deallocation of deeply nested containers only while the object's type's
 * deallocator is the one running: for a wrapped type that is the wrapper, so the wrapper
 * takes the trashcan in the original's place (on 3.14+, _Py_Dealloc does it for everyone and
 * these macros are empty). Its deposit needs the object out of the GC's lists first. */
#if PY_VERSION_HEX < 0x030E0000
#define TRASHCAN_DEALLOC(i, op)                                                               \
    PyObject_GC_UnTrack(op);                                                                  \
    Py_TRASHCAN_BEGIN(op, hooks[i])                                                           \
    note_death(op);                                                                           \
    hooked[i].original(op);                                                                   \
    Py_TRASHCAN_END
#else   /* PYVERSIONS: 3.14+ takes the trashcan in _Py_Dealloc, whatever the deallocator */
#define TRASHCAN_DEALLOC(i, op) note_death(op); hooked[i].original(op);
#endif
static destructor const hooks[MAX_HOOKED];
#define HOOK(a, b)                                                                            \
    static void hooked_dealloc_##a##_##b(PyObject *op) {                                      \
        if (!hooked[a * 8 + b].trashcan) {                                                    \
            note_death(op);                                                                   \
            hooked[a * 8 + b].original(op);                                                   \
            return;                                                                           \
        }                                                                                     \
        TRASHCAN_DEALLOC(a * 8 + b, op)                                                       \
    }
#define HOOKS8(a) HOOK(a, 0) HOOK(a, 1) HOOK(a, 2) HOOK(a, 3) HOOK(a, 4) HOOK(a, 5) \
    HOOK(a, 6) HOOK(a, 7)
HOOKS8(0) HOOKS8(1) HOOKS8(2) HOOKS8(3)
#define NAMES8(a) hooked_dealloc_##a##_0, hooked_dealloc_##a##_1, hooked_dealloc_##a##_2, \
    hooked_dealloc_##a##_3, hooked_dealloc_##a##_4, hooked_dealloc_##a##_5, \
    hooked_dealloc_##a##_6, hooked_dealloc_##a##_7
static destructor const hooks[MAX_HOOKED] = {NAMES8(0), NAMES8(1), NAMES8(2), NAMES8(3)};

static destructor subtype_dealloc_fn;   /* CPython's deallocator of heap types */

/* The type whose deallocator frees instances of `tp`: its own, or for a class written in
 * Python its nearest base that is not. */
static PyTypeObject *dealloc_type(PyTypeObject *tp) {
    while (tp && subtype_dealloc_fn && tp->tp_dealloc == subtype_dealloc_fn) tp = tp->tp_base;
    return tp;
}

/* Whether an instance of `tp` is freed through one of the wrapped deallocators. */
static int dies_through_hook(PyTypeObject *tp) {
    if (!(tp = dealloc_type(tp))) return 0;
    destructor dealloc = LOAD(&tp->tp_dealloc);
    for (int i = 0, n = LOAD_ACQ(&nhooked); i < n; i++)
        if (dealloc == hooks[i]) return 1;
    return 0;
}

static PyTypeObject *namespace_type;        /* types.SimpleNamespace */
static destructor base_exception_dealloc;   /* BaseException's own, before any wrapping */

/* Objects of builtin types that keep attributes but cannot be weakly referenced
 * (SimpleNamespace) or would show a weakref through `__weakref__` (exceptions): their deaths
 * are seen through their deallocator, wrapped when the first one is tracked. */
static void hook_builtin_base(PyTypeObject *tp) {
    if (!(tp = dealloc_type(tp)) || (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return;
    if (tp == namespace_type)
        hook_dealloc(tp, 0);
    else if (PyType_IsSubtype(tp, (PyTypeObject *)PyExc_BaseException))
        hook_dealloc(tp, LOAD(&tp->tp_dealloc) == base_exception_dealloc);
}

/* Wrap `tp`'s deallocator; `trashcan`: the original uses CPython's trashcan. Done before any
 * thread can deallocate through the wrapper (at import and configure). */
void hook_dealloc(PyTypeObject *tp, int trashcan) {
    static Lock hooking;   /* a leaf */
    if (!tp || (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return;
    LOCK(&hooking);
    int known = 0;
    for (int i = 0; i < nhooked; i++) known |= hooked[i].type == tp;
    if (!known && nhooked < MAX_HOOKED) {
        hooked[nhooked].type = tp;
        hooked[nhooked].original = tp->tp_dealloc;
        /* the wrapper untracks before the original does: only where that is done by the
         * function (a second untrack by the macro would corrupt the GC's list) */
        hooked[nhooked].trashcan = trashcan && PyType_IS_GC(tp);
        STORE_REL(&tp->tp_dealloc, hooks[nhooked]);   /* after the original is in place */
        STORE_REL(&nhooked, nhooked + 1);
    }
    UNLOCK(&hooking);
}

/* Whether a wrapped deallocator will report obj's death (to note_death, which is then told to
 * look for it): the way to follow an object without a weakref, which `obj.__weakref__` shows. */
int watch_by_hook(PyObject *obj) {
    hook_builtin_base(Py_TYPE(obj));
    if (!dies_through_hook(Py_TYPE(obj))) return 0;
    death_note((uintptr_t)obj);
    return 1;
}

/* Make the Tracked for `obj`. Allocates Python objects (so GC may run): call with no table
 * pointer held, then insert with tracked_insert. Trackers come from pymalloc (the GIL is held
 * wherever one is made or freed): no per-block header, and size classes 16 bytes apart. */
Tracked *tracked_new(PyObject *obj, uint8_t kind) {
    uint32_t cap = kind == KIND_RECORD ? first_cells(Py_TYPE(obj)) : 0;
    size_t size = kind == KIND_RECORD ? RECORD_SIZE(cap) : sizeof(SyncVar);
    Tracked *tr = PyMem_Calloc(1, size);
    if (!tr) { PyErr_NoMemory(); return NULL; }
    account((Py_ssize_t)size);
    if (kind == KIND_RECORD) ((Record *)tr)->capcells = cap;   /* compact: no full state */
    tr->kind = kind;
    hook_builtin_base(Py_TYPE(obj));
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

/* Insert, unless another thread or a nested call made one meanwhile: then drop ours and
 * return that one. Either way the result may move once the stripe is released: writers look
 * it up again under the stripe. */
Tracked *tracked_insert(Table *t, PyObject *obj, Tracked *tr) {
    Lock *stripe = stripe_of(obj);
    LOCK(stripe);
    Tracked *existing = table_get(t, obj);
    int err = existing ? 0 : table_put(t, obj, tr);
    UNLOCK(stripe);
    if (existing || err) {
        free_all(&tr, 1);
        return existing;
    }
    if (tr->strong) {
        LOCK(&strong_lock);
        if (nstrong == capstrong) {
            size_t cap = capstrong ? capstrong * 2 : 256;
            Strong *a = PyMem_RawRealloc(strong_list, cap * sizeof(*a));
            if (!a) { UNLOCK(&strong_lock); return tr; }   /* not swept: a leak, never wrong */
            strong_list = a;
            capstrong = cap;
        }
        strong_list[nstrong++] = (Strong){obj, tr->kind};
        STORE(&strong_since_sweep, strong_since_sweep + 1);
        UNLOCK(&strong_lock);
    }
    return tr;
}

/* Drop strongly held objects nobody else references (called at the start of a probe). What
 * only the table holds can gain no new reference: nobody else can reach it. */
void sweep(void) {
    LOCK(&strong_lock);
    size_t n = nstrong;
    Strong *list = strong_list;
    strong_list = NULL;
    nstrong = capstrong = 0;
    STORE(&strong_since_sweep, 0);
    UNLOCK(&strong_lock);
    Tracked **dead = PyMem_RawMalloc(sizeof(Tracked *) * (n + 1));
    if (!dead) { PyMem_RawFree(list); return; }
    size_t ndead = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        Table *t = list[i].kind == KIND_RECORD ? &objects : &syncs;
        Lock *stripe = stripe_of(list[i].obj);
        LOCK(stripe);
        Tracked *tr = table_get(t, list[i].obj);
        if (tr && tr->strong && tr->ref == list[i].obj && Py_REFCNT(list[i].obj) == 1) {
            table_del(t, list[i].obj);
            dead[ndead++] = tr;
        } else if (tr && tr->strong && tr->ref == list[i].obj) {
            list[kept++] = list[i];
        }
        UNLOCK(stripe);
    }
    LOCK(&strong_lock);   /* the survivors go back, with what was added meanwhile */
    Strong *a = PyMem_RawRealloc(list, (kept + nstrong + 1) * sizeof(Strong));
    if (a) {
        memcpy(a + kept, strong_list, nstrong * sizeof(Strong));
        PyMem_RawFree(strong_list);
        strong_list = a;
        nstrong += kept;
        capstrong = nstrong;
    }
    UNLOCK(&strong_lock);
    free_all(dead, ndead);
    PyMem_RawFree(dead);
}

/* In a fork child: no object is strongly held any more (the caller frees their trackers). */
void strong_after_fork(void) {
    PyMem_RawFree(strong_list);
    strong_list = NULL;
    nstrong = capstrong = strong_since_sweep = 0;
    memset(&strong_lock, 0, sizeof(strong_lock));
    memset(&watch_lock, 0, sizeof(watch_lock));
}

/* For the Python twin: hear about the death of an object that cannot be weakly referenced. */
PyObject *fast_watch_death(PyObject *m, PyObject *obj) {
    hook_builtin_base(Py_TYPE(obj));
    if (!dies_through_hook(Py_TYPE(obj))) Py_RETURN_FALSE;
    LOCK(&watch_lock);
    int err = map_put(&death_watch, (uintptr_t)obj, obj);
    UNLOCK(&watch_lock);
    if (err < 0) return NULL;
    death_note((uintptr_t)obj);
    Py_RETURN_TRUE;
}

PyObject *fast_deaths(PyObject *m, PyObject *noargs) {
    PyObject *fresh = PyList_New(0);
    if (!fresh) return NULL;
    LOCK(&watch_lock);
    PyObject *drained = deaths;
    int none = !PyList_GET_SIZE(drained);
    if (!none) deaths = fresh;
    UNLOCK(&watch_lock);
    if (none) {
        Py_DECREF(fresh);
        Py_RETURN_NONE;
    }
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
    base_exception_dealloc = ((PyTypeObject *)PyExc_BaseException)->tp_dealloc;
    PyObject *types = PyImport_ImportModule("types");
    PyObject *ns = types ? PyObject_GetAttrString(types, "SimpleNamespace") : NULL;
    Py_XDECREF(types);
    if (!ns || !PyType_Check(ns)) { Py_XDECREF(ns); return -1; }
    namespace_type = (PyTypeObject *)ns;   /* kept: a builtin type */
    /* which of their deallocators use the trashcan: CPython's Objects/ (3.11-3.13) */
    hook_dealloc(&PyBaseObject_Type, 0);
    hook_dealloc(&PyDict_Type, 1);
    hook_dealloc(&PyList_Type, 1);
    hook_dealloc(&PySet_Type, 1);
    hook_dealloc(&PyByteArray_Type, 0);
    hook_dealloc(&PyCell_Type, 0);
    return 0;
}
