/* THE hot path in C: FastTrack over the probes' events (twin of runtime/api.py).
 *
 * Under the GIL each call is atomic with respect to other Python threads, so the runtime's
 * state needs no lock. What can run in the middle of a call is the cyclic GC (and with it
 * finalizers and weakref callbacks, which may call back in here) whenever a Python object is
 * allocated or released. So every such allocation happens at a point where the tables are
 * consistent, and pointers into the tables are looked up again after it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- epochs and vector clocks (same layout as runtime/clock.py) ------------------------ */

#define TID_BITS 24
#define CLOCK_SHIFT (TID_BITS + 1)
#define TID_MASK ((1u << TID_BITS) - 1)
#define EPOCH_TID(e) ((uint32_t)(((e) >> 1) & TID_MASK))
#define EPOCH_CLOCK(e) ((e) >> CLOCK_SHIFT)

/* site flags (runtime/siteflags.py) */
#define F_ATTR 1
#define F_SUPER 2
#define F_GLOBAL 4
#define F_ATOMIC 8

typedef struct {
    uint32_t n;
    uint64_t *c;   /* clock of each thread, by tid */
} VC;

static int vc_grow(VC *vc, uint32_t n) {
    if (n <= vc->n) return 0;
    uint64_t *c = PyMem_RawRealloc(vc->c, n * sizeof(uint64_t));
    if (!c) { PyErr_NoMemory(); return -1; }
    memset(c + vc->n, 0, (n - vc->n) * sizeof(uint64_t));
    vc->c = c;
    vc->n = n;
    return 0;
}

static int vc_join(VC *dst, const VC *src) {
    if (vc_grow(dst, src->n) < 0) return -1;
    for (uint32_t i = 0; i < src->n; i++)
        if (src->c[i] > dst->c[i]) dst->c[i] = src->c[i];
    return 0;
}

static inline int ordered(uint64_t e, const VC *vc) {
    uint32_t tid = EPOCH_TID(e);
    return EPOCH_CLOCK(e) <= (tid < vc->n ? vc->c[tid] : 0);
}

/* ---- threads ---------------------------------------------------------------------------- */

typedef struct {
    uint32_t tid;
    uint64_t epoch;        /* clock << CLOCK_SHIFT | tid << 1 */
    VC vc;
    uint32_t nheld, capheld;
    uint32_t *held_id, *held_count;   /* locks held: sync id and re-entry count */
    uint32_t lockset;      /* interned id of the sorted held ids */
} ThreadState;

static __thread ThreadState *tls_state;
static ThreadState **all_threads;
static uint32_t nthreads, capthreads;

static ThreadState *new_thread(void) {
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

static inline ThreadState *current(void) {
    ThreadState *t = tls_state;
    return t ? t : new_thread();
}

static inline void tick(ThreadState *t) {
    t->vc.c[t->tid]++;
    t->epoch = (t->vc.c[t->tid] << CLOCK_SHIFT) | ((uint64_t)t->tid << 1);
}

/* ---- pointer-keyed hash map (open addressing; key 0 empty, key 1 deleted) ----------------- */

typedef struct {
    uintptr_t key;
    void *value;
} Slot;

typedef struct {
    Slot *slots;
    size_t cap, used, filled;   /* filled counts deleted slots too */
} Map;

static inline size_t map_hash(uintptr_t k, size_t cap) {
    return (size_t)(((uint64_t)(k >> 4) * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static void *map_get(Map *m, uintptr_t key) {
    if (!m->cap) return NULL;
    size_t i = map_hash(key, m->cap);
    for (;;) {
        Slot *s = &m->slots[i];
        if (s->key == key) return s->value;
        if (s->key == 0) return NULL;
        i = (i + 1) & (m->cap - 1);
    }
}

static int map_put(Map *m, uintptr_t key, void *value);

static int map_resize(Map *m, size_t cap) {
    Slot *old = m->slots;
    size_t oldcap = m->cap;
    Slot *slots = PyMem_RawCalloc(cap, sizeof(Slot));
    if (!slots) { PyErr_NoMemory(); return -1; }
    m->slots = slots;
    m->cap = cap;
    m->used = m->filled = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key > 1) map_put(m, old[i].key, old[i].value);
    PyMem_RawFree(old);
    return 0;
}

static int map_put(Map *m, uintptr_t key, void *value) {
    if ((m->filled + 1) * 4 >= m->cap * 3) {
        size_t cap = m->cap ? m->cap : 1024;
        while ((m->used + 1) * 2 >= cap) cap *= 2;
        if (map_resize(m, cap < 1024 ? 1024 : cap) < 0) return -1;
    }
    size_t i = map_hash(key, m->cap);
    Slot *tomb = NULL;
    for (;;) {
        Slot *s = &m->slots[i];
        if (s->key == key) { s->value = value; return 0; }
        if (s->key == 1 && !tomb) tomb = s;
        if (s->key == 0) {
            if (tomb) s = tomb; else m->filled++;
            s->key = key;
            s->value = value;
            m->used++;
            return 0;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

static void map_del(Map *m, uintptr_t key) {
    if (!m->cap) return;
    size_t i = map_hash(key, m->cap);
    for (;;) {
        Slot *s = &m->slots[i];
        if (s->key == key) { s->key = 1; s->value = NULL; m->used--; return; }
        if (s->key == 0) return;
        i = (i + 1) & (m->cap - 1);
    }
}

static void map_clear(Map *m) {
    PyMem_RawFree(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- tracked objects: shadow records and sync vars, tied to their object's life ----------- */

typedef struct {
    uint64_t epoch;   /* 0: none */
    uint32_t site, lockset, stack;
} Access;

typedef struct {
    PyObject *key;    /* strong */
    Access w, r;
    Access *shared;   /* by tid, once reads are concurrent; NULL otherwise */
    uint32_t nshared;
} Cell;

enum { KIND_RECORD = 1, KIND_SYNC = 2 };

typedef struct Tracked {
    uintptr_t addr;
    PyObject *ref;     /* a Ref (weak) or the object itself (strong) */
    uint8_t kind, strong, ignore;
    uint32_t id;       /* sync vars: M<id> in reports */
    /* records */
    uint32_t ncells, capcells;
    Cell *cells;
    /* sync vars */
    VC vc;
} Tracked;

static Map objects, syncs;
static Tracked **strong_list;      /* tracked objects that hold their object */
static size_t nstrong, capstrong, strong_since_sweep;
#define SWEEP_EVERY 4096

/* A weakref subtype that knows its Tracked: the death callback frees it. */
typedef struct {
    PyWeakReference base;
    Tracked *owner;
} Ref;

static PyTypeObject RefType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racewatch.runtime._fast.Ref",
    .tp_basicsize = sizeof(Ref),
    .tp_flags = Py_TPFLAGS_DEFAULT,   /* GC support and traversal are inherited */
    .tp_doc = "A weak reference whose death frees racewatch's shadow state of its object.",
};

static PyObject *died_callback;   /* C function: called with the dead Ref */
static PyObject *weakrefable_no;  /* set of types that refused a weakref */

static void free_tracked(Tracked *tr, PyObject **defer, size_t *ndefer);

static void cells_release(Tracked *tr, PyObject **defer, size_t *ndefer) {
    for (uint32_t i = 0; i < tr->ncells; i++) {
        Cell *c = &tr->cells[i];
        if (defer) defer[(*ndefer)++] = c->key; else Py_XDECREF(c->key);
        PyMem_RawFree(c->shared);
    }
    PyMem_RawFree(tr->cells);
    tr->cells = NULL;
    tr->ncells = tr->capcells = 0;
}

static void free_tracked(Tracked *tr, PyObject **defer, size_t *ndefer) {
    cells_release(tr, defer, ndefer);
    PyMem_RawFree(tr->vc.c);
    if (tr->ref && !tr->strong) ((Ref *)tr->ref)->owner = NULL;
    PyObject *ref = tr->ref;
    tr->ref = NULL;
    PyMem_RawFree(tr);
    if (defer) defer[(*ndefer)++] = ref; else Py_XDECREF(ref);
}

static PyObject *ref_died(PyObject *module, PyObject *wr) {
    Ref *ref = (Ref *)wr;
    Tracked *tr = ref->owner;
    if (tr) {
        Map *m = tr->kind == KIND_RECORD ? &objects : &syncs;
        if (map_get(m, tr->addr) == tr) map_del(m, tr->addr);
        ref->owner = NULL;
        tr->ref = NULL;   /* the Ref itself is being released by its referent's death */
        cells_release(tr, NULL, NULL);
        PyMem_RawFree(tr->vc.c);
        PyMem_RawFree(tr);
        Py_DECREF(wr);    /* the reference the Tracked held */
    }
    Py_RETURN_NONE;
}

static PyMethodDef died_def = {"_died", ref_died, METH_O, NULL};

/* Make the Tracked for `obj`. Allocates Python objects (so GC may run): call with no table
 * pointer held, then insert with tracked_insert. */
static Tracked *tracked_new(PyObject *obj, uint8_t kind) {
    Tracked *tr = PyMem_RawCalloc(1, sizeof(Tracked));
    if (!tr) { PyErr_NoMemory(); return NULL; }
    tr->addr = (uintptr_t)obj;
    tr->kind = kind;
    int refusing = PySet_Contains(weakrefable_no, (PyObject *)Py_TYPE(obj));
    if (refusing < 0) { PyMem_RawFree(tr); return NULL; }
    if (!refusing) {
        PyObject *ref = PyObject_CallFunctionObjArgs((PyObject *)&RefType, obj, died_callback,
                                                     NULL);
        if (ref) {
            ((Ref *)ref)->owner = tr;
            tr->ref = ref;
            return tr;
        }
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) { PyMem_RawFree(tr); return NULL; }
        PyErr_Clear();
        if (PySet_Add(weakrefable_no, (PyObject *)Py_TYPE(obj)) < 0) {
            PyMem_RawFree(tr);
            return NULL;
        }
    }
    Py_INCREF(obj);
    tr->ref = obj;
    tr->strong = 1;
    return tr;
}

/* Insert, unless a nested call made one meanwhile: then drop ours and return that one. */
static Tracked *tracked_insert(Map *m, Tracked *tr) {
    Tracked *existing = map_get(m, tr->addr);
    if (existing) {
        free_tracked(tr, NULL, NULL);
        return existing;
    }
    if (map_put(m, tr->addr, tr) < 0) { free_tracked(tr, NULL, NULL); return NULL; }
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
static void free_all(Tracked **list, size_t n) {
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++) nrefs += list[i]->ncells + 1;
    PyObject **refs = PyMem_RawMalloc(sizeof(PyObject *) * (nrefs + 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        Tracked *tr = list[i];
        if (refs) cells_release(tr, refs, &k); else cells_release(tr, NULL, NULL);
        free_tracked(tr, refs ? refs : NULL, &k);
    }
    for (size_t i = 0; refs && i < k; i++) Py_XDECREF(refs[i]);
    PyMem_RawFree(refs);
}

/* Drop strongly held objects nobody else references (called at the start of a probe). */
static void sweep(void) {
    strong_since_sweep = 0;
    Tracked **dead = PyMem_RawMalloc(sizeof(Tracked *) * (nstrong + 1));
    if (!dead) return;
    size_t ndead = 0, kept = 0;
    for (size_t i = 0; i < nstrong; i++) {
        Tracked *tr = strong_list[i];
        if (Py_REFCNT(tr->ref) == 1) {
            Map *m = tr->kind == KIND_RECORD ? &objects : &syncs;
            if (map_get(m, tr->addr) == tr) map_del(m, tr->addr);
            dead[ndead++] = tr;
        } else {
            strong_list[kept++] = tr;
        }
    }
    nstrong = kept;
    free_all(dead, ndead);
    PyMem_RawFree(dead);
}

/* ---- configuration and per-site flags --------------------------------------------------- */

static uint8_t *site_flags;
static size_t nsite_flags;
static PyObject *on_race;          /* callable(event) or NULL */
static PyObject *ignored_types;    /* tuple of types whose instances are never shared */
static PyObject *proxy_types;      /* dict: lock type -> None or callable giving its clock obj */
static PyObject *super_owner;      /* callable(obj, key) -> class or None */
static int history_full;

/* ---- locksets --------------------------------------------------------------------------- */

static PyObject *lockset_ids;      /* dict: tuple of sync ids -> int */
static PyObject *lockset_list;     /* list: id -> tuple */
static PyObject *sync_names;       /* list: sync id -> description */

static int intern_lockset(ThreadState *t) {
    /* held ids are kept sorted, so equal sets give equal tuples */
    PyObject *tuple = PyTuple_New(t->nheld);
    if (!tuple) return -1;
    for (uint32_t i = 0; i < t->nheld; i++) {
        PyObject *v = PyLong_FromUnsignedLong(t->held_id[i]);
        if (!v) { Py_DECREF(tuple); return -1; }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    PyObject *id = PyDict_GetItemWithError(lockset_ids, tuple);
    long value;
    if (id) {
        value = PyLong_AsLong(id);
    } else {
        if (PyErr_Occurred()) { Py_DECREF(tuple); return -1; }
        value = PyList_GET_SIZE(lockset_list);
        PyObject *v = PyLong_FromLong(value);
        if (!v || PyDict_SetItem(lockset_ids, tuple, v) < 0 ||
            PyList_Append(lockset_list, tuple) < 0) {
            Py_XDECREF(v);
            Py_DECREF(tuple);
            return -1;
        }
        Py_DECREF(v);
    }
    Py_DECREF(tuple);
    t->lockset = (uint32_t)value;
    return 0;
}

static int update_lockset(ThreadState *t, uint32_t sync_id, int delta) {
    uint32_t i = 0;
    while (i < t->nheld && t->held_id[i] < sync_id) i++;
    if (i < t->nheld && t->held_id[i] == sync_id) {
        if (delta > 0) { t->held_count[i]++; return 0; }
        if (--t->held_count[i] > 0) return 0;
        memmove(&t->held_id[i], &t->held_id[i + 1], (t->nheld - i - 1) * sizeof(uint32_t));
        memmove(&t->held_count[i], &t->held_count[i + 1],
                (t->nheld - i - 1) * sizeof(uint32_t));
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
            t->capheld = cap;
        }
        memmove(&t->held_id[i + 1], &t->held_id[i], (t->nheld - i) * sizeof(uint32_t));
        memmove(&t->held_count[i + 1], &t->held_count[i], (t->nheld - i) * sizeof(uint32_t));
        t->held_id[i] = sync_id;
        t->held_count[i] = 1;
        t->nheld++;
    }
    return intern_lockset(t);
}

/* ---- full history: stacks of previous accesses, interned (a stack depot) ----------------- */

static PyObject *stack_ids;    /* dict: tuple of (code, line) pairs -> int */
static PyObject *stack_list;   /* list: id -> tuple */

static uint32_t capture_stack(void) {
    PyObject *frames = PyList_New(0);
    if (!frames) return 0;
    PyFrameObject *frame = PyEval_GetFrame();
    Py_XINCREF(frame);
    while (frame) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *pair = Py_BuildValue("(Ni)", (PyObject *)code, PyFrame_GetLineNumber(frame));
        if (!pair || PyList_Append(frames, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(frame);
            Py_DECREF(frames);
            PyErr_Clear();
            return 0;
        }
        Py_DECREF(pair);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    PyObject *tuple = PyList_AsTuple(frames);
    Py_DECREF(frames);
    if (!tuple) { PyErr_Clear(); return 0; }
    PyObject *id = PyDict_GetItemWithError(stack_ids, tuple);
    long value = 0;
    if (id) {
        value = PyLong_AsLong(id);
    } else if (!PyErr_Occurred()) {
        value = PyList_GET_SIZE(stack_list);
        PyObject *v = PyLong_FromLong(value);
        if (!v || PyDict_SetItem(stack_ids, tuple, v) < 0 || PyList_Append(stack_list, tuple) < 0)
            value = 0;
        Py_XDECREF(v);
    }
    PyErr_Clear();
    Py_DECREF(tuple);
    return (uint32_t)value;
}

/* ---- races found during one update, reported once the update is complete ----------------- */

typedef struct {
    Access prev;
    int prev_write;
} Found;

#define MAX_FOUND 8

static PyObject *reported;   /* dict: (site, site) -> count */

static PyObject *lockset_tuple(uint32_t id) {
    if (id < (uint32_t)PyList_GET_SIZE(lockset_list)) {
        PyObject *t = PyList_GET_ITEM(lockset_list, id);
        Py_INCREF(t);
        return t;
    }
    return PyTuple_New(0);
}

static PyObject *stack_tuple(uint32_t id) {
    if (id && id < (uint32_t)PyList_GET_SIZE(stack_list)) {
        PyObject *t = PyList_GET_ITEM(stack_list, id);
        Py_INCREF(t);
        return t;
    }
    Py_RETURN_NONE;
}

static int report_found(PyObject *target, PyObject *key, ThreadState *t, uint32_t site,
                        int is_write, int atomic, Found *found, int nfound) {
    for (int i = 0; i < nfound; i++) {
        uint32_t a = found[i].prev.site, b = site;
        PyObject *pair = a <= b ? Py_BuildValue("(II)", a, b) : Py_BuildValue("(II)", b, a);
        if (!pair) return -1;
        PyObject *count = PyDict_GetItemWithError(reported, pair);
        long n = count ? PyLong_AsLong(count) : 0;
        if (!count && PyErr_Occurred()) { Py_DECREF(pair); return -1; }
        PyObject *v = PyLong_FromLong(n + 1);
        int err = !v || PyDict_SetItem(reported, pair, v) < 0;
        Py_XDECREF(v);
        Py_DECREF(pair);
        if (err) return -1;
        if (n || !on_race) continue;
        Access *p = &found[i].prev;
        PyObject *event = Py_BuildValue(
            "(OOIIiiNIIiiNN)", target, key, site, t->tid, is_write, atomic,
            lockset_tuple(t->lockset), p->site, EPOCH_TID(p->epoch), found[i].prev_write,
            (int)(p->epoch & 1), lockset_tuple(p->lockset), stack_tuple(p->stack));
        if (!event) return -1;
        PyObject *r = PyObject_CallOneArg(on_race, event);
        Py_DECREF(event);
        if (!r) PyErr_WriteUnraisable(on_race);   /* never into the program's own flow */
        Py_XDECREF(r);
    }
    return 0;
}

/* ---- accesses ----------------------------------------------------------------------------- */

static Cell *find_cell(Tracked *tr, PyObject *key) {
    Cell *c = tr->cells;
    for (uint32_t i = 0, n = tr->ncells; i < n; i++)
        if (c[i].key == key) return &c[i];
    return NULL;
}

static Cell *add_cell(Tracked *tr, PyObject *key) {
    if (tr->ncells == tr->capcells) {
        uint32_t cap = tr->capcells ? tr->capcells * 2 : 4;
        Cell *cells = PyMem_RawRealloc(tr->cells, cap * sizeof(Cell));
        if (!cells) { PyErr_NoMemory(); return NULL; }
        tr->cells = cells;
        tr->capcells = cap;
    }
    Cell *c = &tr->cells[tr->ncells++];
    memset(c, 0, sizeof(*c));
    Py_INCREF(key);
    c->key = key;
    return c;
}

static inline int conflicts(const Access *prev, int atomic, const VC *vc) {
    return prev->epoch && !(atomic && (prev->epoch & 1)) && !ordered(prev->epoch, vc);
}

/* The object whose shadow holds the location, or NULL (no error) if it cannot race. */
static PyObject *locate(PyObject *obj, PyObject *key, uint8_t flags) {
    if (((flags & F_SUPER) || Py_TYPE(obj) == &PySuper_Type) && super_owner) {
        PyObject *owner = PyObject_CallFunctionObjArgs(super_owner, obj, key, NULL);
        if (!owner) return NULL;
        Py_DECREF(owner);   /* a class: alive as long as the instance's type is */
        return owner == Py_None ? NULL : owner;
    }
    if (flags & F_GLOBAL) return PyEval_GetGlobals();
    if (flags & F_ATTR) {
        PyTypeObject *tp = Py_TYPE(obj);
        if (PyModule_CheckExact(obj)) return PyModule_GetDict(obj);  /* attribute == global */
        if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && tp->tp_dictoffset == 0)
            return NULL;   /* an instance of a static type without a __dict__ */
    }
    return obj;
}

static PyObject *record_access(PyObject *obj, PyObject *key, PyObject *site_obj, int is_write) {
    long site = PyLong_AsLong(site_obj);
    if (site < 0 && PyErr_Occurred()) return NULL;
    uint8_t flags = (size_t)site < nsite_flags ? site_flags[site] : 0;
    if (nstrong && strong_since_sweep >= SWEEP_EVERY) sweep();
    PyObject *target = locate(obj, key, flags);
    if (!target) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    ThreadState *t = current();
    if (!t) return NULL;
    int atomic = (flags & F_ATOMIC) ? 1 : 0;
    uint64_t now = t->epoch | atomic;

    Tracked *tr = map_get(&objects, (uintptr_t)target);
    if (tr) {
        if (tr->ignore) Py_RETURN_NONE;
        Cell *c = find_cell(tr, key);
        if (c) {   /* the fast path: nothing new since this thread's last access */
            if (is_write) {
                if (c->w.epoch == now || (atomic && (c->w.epoch | 1) == now)) Py_RETURN_NONE;
            } else if (!c->shared) {
                if (c->r.epoch == now || (atomic && (c->r.epoch | 1) == now)) Py_RETURN_NONE;
            } else if (t->tid < c->nshared) {
                uint64_t e = c->shared[t->tid].epoch;
                if (e == now || (atomic && (e | 1) == now)) Py_RETURN_NONE;
            }
        }
    } else {
        Tracked *fresh = tracked_new(target, KIND_RECORD);   /* may run GC */
        if (!fresh) return NULL;
        if (!map_get(&objects, fresh->addr)) {
            int ignore = PyObject_IsInstance(target, ignored_types);
            if (ignore < 0) { free_tracked(fresh, NULL, NULL); return NULL; }
            fresh->ignore = (uint8_t)ignore;
        }
        tr = tracked_insert(&objects, fresh);
        if (!tr) return NULL;
        if (tr->ignore) Py_RETURN_NONE;
    }

    uint32_t stack = 0;
    if (history_full) {
        stack = capture_stack();   /* may run GC: look the record up again */
        tr = map_get(&objects, (uintptr_t)target);
        if (!tr) Py_RETURN_NONE;   /* cannot happen while `target` is alive; be safe */
    }
    Cell *c = find_cell(tr, key);
    if (!c && !(c = add_cell(tr, key))) return NULL;

    Found found[MAX_FOUND];
    int nfound = 0;
    Access now_access = {now, (uint32_t)site, t->lockset, stack};
    const VC *vc = &t->vc;
    if (is_write) {
        if (c->w.epoch == now || (atomic && (c->w.epoch | 1) == now)) Py_RETURN_NONE;
        if (conflicts(&c->w, atomic, vc)) found[nfound++] = (Found){c->w, 1};
        if (c->shared) {
            for (uint32_t i = 0; i < c->nshared; i++)
                if (conflicts(&c->shared[i], atomic, vc) && nfound < MAX_FOUND)
                    found[nfound++] = (Found){c->shared[i], 0};
            PyMem_RawFree(c->shared);
            c->shared = NULL;
            c->nshared = 0;
        } else if (conflicts(&c->r, atomic, vc)) {
            found[nfound++] = (Found){c->r, 0};
        }
        c->w = now_access;
        memset(&c->r, 0, sizeof(c->r));
    } else {
        Access *last = c->shared ? (t->tid < c->nshared ? &c->shared[t->tid] : NULL) : &c->r;
        if (last && (last->epoch == now || (atomic && (last->epoch | 1) == now))) Py_RETURN_NONE;
        if (conflicts(&c->w, atomic, vc)) found[nfound++] = (Found){c->w, 1};
        if (c->shared || (c->r.epoch && !ordered(c->r.epoch, vc))) {
            if (!c->shared) {   /* concurrent reads: keep one per thread from now on */
                uint32_t other = EPOCH_TID(c->r.epoch);
                uint32_t n = (other > t->tid ? other : t->tid) + 1;
                c->shared = PyMem_RawCalloc(n, sizeof(Access));
                if (!c->shared) return PyErr_NoMemory();
                c->nshared = n;
                c->shared[other] = c->r;
                memset(&c->r, 0, sizeof(c->r));
            } else if (t->tid >= c->nshared) {
                Access *a = PyMem_RawRealloc(c->shared, (t->tid + 1) * sizeof(Access));
                if (!a) return PyErr_NoMemory();
                memset(a + c->nshared, 0, (t->tid + 1 - c->nshared) * sizeof(Access));
                c->shared = a;
                c->nshared = t->tid + 1;
            }
            c->shared[t->tid] = now_access;
        } else {
            c->r = now_access;
        }
    }
    if (nfound && report_found(target, key, t, (uint32_t)site, is_write, atomic, found,
                               nfound) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *fast_read(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "read(obj, key, site)"); return NULL; }
    return record_access(args[0], args[1], args[2], 0);
}

static PyObject *fast_write(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "write(obj, key, site)"); return NULL; }
    return record_access(args[0], args[1], args[2], 1);
}

static PyObject *fast_atomic_read(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "atomic_read(obj, site)"); return NULL; }
    return record_access(args[0], Py_None, args[1], 0);
}

static PyObject *fast_atomic_write(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "atomic_write(obj, site)"); return NULL; }
    return record_access(args[0], Py_None, args[1], 1);
}

/* ---- synchronization ---------------------------------------------------------------------- */

static Tracked *sync_var(PyObject *obj) {
    Tracked *tr = map_get(&syncs, (uintptr_t)obj);
    if (tr) return tr;
    Tracked *fresh = tracked_new(obj, KIND_SYNC);   /* may run GC */
    return fresh ? tracked_insert(&syncs, fresh) : NULL;
}

/* Locks get a number (M<id> in reports) the first time they are held. */
static int name_lock(Tracked *var, PyObject *obj) {
    PyObject *name = PyUnicode_FromFormat("%s at %p", Py_TYPE(obj)->tp_name, obj);
    if (!name) return -1;
    int err = PyList_Append(sync_names, name);
    Py_DECREF(name);
    if (err < 0) return -1;
    var = map_get(&syncs, (uintptr_t)obj);   /* the allocation may have run GC */
    if (var && !var->id) var->id = (uint32_t)PyList_GET_SIZE(sync_names) - 1;
    return 0;
}

static PyObject *sync_event(PyObject *obj, int is_acquire, int is_lock) {
    ThreadState *t = current();
    if (!t) return NULL;
    Tracked *var = sync_var(obj);
    if (!var) return NULL;
    if (is_lock && !var->id && name_lock(var, obj) < 0) return NULL;
    var = map_get(&syncs, (uintptr_t)obj);
    if (!var) Py_RETURN_NONE;
    uint32_t id = var->id;
    if (is_acquire ? vc_join(&t->vc, &var->vc) : vc_join(&var->vc, &t->vc)) return NULL;
    tick(t);
    if (is_lock && update_lockset(t, id, is_acquire ? 1 : -1) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *fast_acquire(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "acquire(sync, site)"); return NULL; }
    return sync_event(args[0], 1, 1);
}

static PyObject *fast_release(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "release(sync, site)"); return NULL; }
    return sync_event(args[0], 0, 1);
}

static PyObject *fast_happens_after(PyObject *m, PyObject *obj) { return sync_event(obj, 1, 0); }
static PyObject *fast_happens_before(PyObject *m, PyObject *obj) { return sync_event(obj, 0, 0); }

static PyObject *fast_thread_end(PyObject *m, PyObject *obj) { return sync_event(obj, 0, 0); }

/* ---- the lock proxy used at instrumented call sites ---------------------------------------- */

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
        PyObject *r = sync_event(self->target, 1, 1);
        if (!r) { Py_DECREF(got); return NULL; }
        Py_DECREF(r);
    }
    return got;
}

/* The release is recorded first: a Python-level release (Condition) could switch threads
 * between the real release and its recording and let a waiter in unordered. */
static PyObject *proxy_release(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *r = sync_event(self->target, 0, 1);
    if (!r) return NULL;
    Py_DECREF(r);
    return proxy_call(self, "release", args, kw);
}

static PyObject *proxy_enter(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *result = proxy_call(self, "__enter__", args, kw);
    if (!result) return NULL;
    PyObject *r = sync_event(self->target, 1, 1);
    if (!r) { Py_DECREF(result); return NULL; }
    Py_DECREF(r);
    return result;
}

static PyObject *proxy_exit(SyncProxy *self, PyObject *args, PyObject *kw) {
    PyObject *r = sync_event(self->target, 0, 1);
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

static PyTypeObject SyncProxyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racewatch.runtime._fast.SyncProxy",
    .tp_basicsize = sizeof(SyncProxy),
    .tp_dealloc = (destructor)proxy_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Stands in for a lock at an instrumented with/acquire/release call site.",
    .tp_methods = proxy_methods,
};

static PyObject *fast_sync(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "sync(obj, site)"); return NULL; }
    PyObject *obj = args[0];
    PyObject *how = proxy_types ? PyDict_GetItemWithError(proxy_types, (PyObject *)Py_TYPE(obj))
                                : NULL;
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

static PyObject *fast_hit(PyObject *m, PyObject *index) { Py_RETURN_NONE; }

/* ---- control (not hot) -------------------------------------------------------------------- */

static PyObject *fast_configure(PyObject *m, PyObject *args, PyObject *kw) {
    static char *names[] = {"on_race", "history_full", "ignored_types", "proxy_types",
                            "super_owner", NULL};
    PyObject *race = Py_None, *ignored = NULL, *proxies = NULL, *owner = NULL;
    int full = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OpOOO", names, &race, &full, &ignored,
                                     &proxies, &owner))
        return NULL;
    Py_XSETREF(on_race, race == Py_None ? NULL : (Py_INCREF(race), race));
    history_full = full;
    PyObject *tuple = ignored ? PySequence_Tuple(ignored) : PyTuple_New(0);
    if (!tuple) return NULL;
    Py_XSETREF(ignored_types, tuple);
    PyObject *dict = proxies && proxies != Py_None ? PyDict_Copy(proxies) : PyDict_New();
    if (!dict) return NULL;
    Py_XSETREF(proxy_types, dict);
    if (owner) { Py_INCREF(owner); Py_XSETREF(super_owner, owner); }
    Py_RETURN_NONE;
}

static PyObject *fast_register_sites(PyObject *m, PyObject *args) {
    Py_ssize_t base;
    Py_buffer flags;
    if (!PyArg_ParseTuple(args, "ny*", &base, &flags)) return NULL;
    size_t need = (size_t)base + (size_t)flags.len;
    if (need > nsite_flags) {
        uint8_t *f = PyMem_RawRealloc(site_flags, need);
        if (!f) { PyBuffer_Release(&flags); return PyErr_NoMemory(); }
        memset(f + nsite_flags, 0, need - nsite_flags);
        site_flags = f;
        nsite_flags = need;
    }
    memcpy(site_flags + base, flags.buf, flags.len);
    PyBuffer_Release(&flags);
    Py_RETURN_NONE;
}

static PyObject *fast_current_tid(PyObject *m, PyObject *noargs) {
    ThreadState *t = current();
    return t ? PyLong_FromUnsignedLong(t->tid) : NULL;
}

static PyObject *fast_races(PyObject *m, PyObject *noargs) { return PyDict_Copy(reported); }

static PyObject *fast_sync_name(PyObject *m, PyObject *id) {
    Py_ssize_t i = PyLong_AsSsize_t(id);
    if (i <= 0 || i >= PyList_GET_SIZE(sync_names)) {
        PyErr_Clear();
        return PyUnicode_FromString("?");
    }
    PyObject *name = PyList_GET_ITEM(sync_names, i);
    Py_INCREF(name);
    return name;
}

static size_t take_all(Map *m, Tracked **into) {
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key > 1) into[n++] = m->slots[i].value;
    map_clear(m);
    return n;
}

/* In a fork child only the forking thread survives: start over with it as thread 0. */
static PyObject *fast_reset_after_fork(PyObject *m, PyObject *noargs) {
    for (uint32_t i = 0; i < nthreads; i++) {
        PyMem_RawFree(all_threads[i]->vc.c);
        PyMem_RawFree(all_threads[i]->held_id);
        PyMem_RawFree(all_threads[i]->held_count);
        PyMem_RawFree(all_threads[i]);
    }
    nthreads = 0;
    tls_state = NULL;
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
    PyDict_Clear(reported);
    Py_RETURN_NONE;
}

static PyObject *fast_stats(PyObject *m, PyObject *noargs) {
    return Py_BuildValue("{s:n,s:n,s:n,s:I}", "objects", (Py_ssize_t)objects.used, "syncs",
                         (Py_ssize_t)syncs.used, "strong", (Py_ssize_t)nstrong, "threads",
                         nthreads);
}

#define FAST(name, doc) {#name, (PyCFunction)(void (*)(void))fast_##name, METH_FASTCALL, doc}

static PyMethodDef module_methods[] = {
    FAST(read, "read(obj, key, site): a plain read of the location (obj, key)."),
    FAST(write, "write(obj, key, site): a plain write of the location (obj, key)."),
    FAST(atomic_read, "atomic_read(obj, site): an atomic operation reading a container."),
    FAST(atomic_write, "atomic_write(obj, site): an atomic operation changing a container."),
    FAST(acquire, "acquire(sync, site): a lock was acquired."),
    FAST(release, "release(sync, site): a lock is about to be released."),
    FAST(sync, "sync(obj, site): obj, or a proxy recording its acquire/release if a lock."),
    {"hit", fast_hit, METH_O, "hit(index): a line ran (coverage)."},
    {"happens_before", fast_happens_before, METH_O, "Release-like edge on obj."},
    {"happens_after", fast_happens_after, METH_O, "Acquire-like edge on obj."},
    {"thread_end", fast_thread_end, METH_O, "The calling thread ends; obj is its Thread."},
    {"configure", (PyCFunction)(void (*)(void))fast_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(on_race, history_full, ignored_types, proxy_types, super_owner)."},
    {"register_sites", fast_register_sites, METH_VARARGS, "register_sites(base, flags)."},
    {"current_tid", fast_current_tid, METH_NOARGS, "The calling thread's id (0: main)."},
    {"races", fast_races, METH_NOARGS, "{(site, site): count} of racing site pairs."},
    {"sync_name", fast_sync_name, METH_O, "Description of sync var M<id>."},
    {"reset_after_fork", fast_reset_after_fork, METH_NOARGS, "Start over in a fork child."},
    {"stats", fast_stats, METH_NOARGS, "Sizes of the runtime's tables."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "racewatch.runtime._fast",
    "THE hot path in C: FastTrack over the probes' events.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__fast(void) {
    RefType.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&RefType) < 0 || PyType_Ready(&SyncProxyType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    died_callback = PyCFunction_New(&died_def, NULL);
    weakrefable_no = PySet_New(NULL);
    lockset_ids = PyDict_New();
    lockset_list = PyList_New(0);
    stack_ids = PyDict_New();
    stack_list = PyList_New(0);
    sync_names = PyList_New(0);
    reported = PyDict_New();
    ignored_types = PyTuple_New(0);
    if (!died_callback || !weakrefable_no || !lockset_ids || !lockset_list || !stack_ids ||
        !stack_list || !sync_names || !reported || !ignored_types) {
        Py_DECREF(m);
        return NULL;
    }
    /* lockset 0 is the empty set; stack 0 means "not recorded" */
    PyObject *empty = PyTuple_New(0);
    PyObject *zero = PyLong_FromLong(0);
    if (!empty || !zero || PyDict_SetItem(lockset_ids, empty, zero) < 0 ||
        PyList_Append(lockset_list, empty) < 0 || PyList_Append(stack_list, Py_None) < 0) {
        Py_XDECREF(empty);
        Py_XDECREF(zero);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(empty);
    Py_DECREF(zero);
    if (PyList_Append(sync_names, Py_None) < 0) { Py_DECREF(m); return NULL; }   /* no M0 */
    Py_INCREF(&SyncProxyType);
    PyModule_AddObject(m, "SyncProxy", (PyObject *)&SyncProxyType);
    return m;
}
