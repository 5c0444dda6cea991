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

#include "../cover/_counters_api.h"

/* ---- epochs and vector clocks (same layout as runtime/clock.py) ------------------------ */

#define TID_BITS 24
#define CLOCK_SHIFT (TID_BITS + 1)
#define TID_MASK ((1u << TID_BITS) - 1)
#define EPOCH_TID(e) ((uint32_t)(((e) >> 1) & TID_MASK))
#define EPOCH_CLOCK(e) ((e) >> CLOCK_SHIFT)

/* site kinds (runtime/sitekinds.py) */
enum {
    K_NONE, K_ATTR, K_SUPER, K_GLOBAL, K_CELL, K_ITEM, K_ITEM_DELETE, K_SLICE, K_CONTAINS,
    K_ITER, K_EQ, K_CALL, K_METHOD_READ, K_METHOD_WRITE, K_METHOD_ATOMIC_READ,
    K_METHOD_ATOMIC_WRITE, K_SYNC
};

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

/* A site id: a small non-negative int, decoded without a call (-1: not one). */
static inline long site_of(PyObject *obj) {
#if PY_VERSION_HEX >= 0x030C0000
    if (PyLong_CheckExact(obj) && PyUnstable_Long_IsCompact((PyLongObject *)obj))
        return (long)PyUnstable_Long_CompactValue((PyLongObject *)obj);
#else
    if (PyLong_CheckExact(obj) && Py_SIZE(obj) >= 0 && Py_SIZE(obj) <= 1)
        return Py_SIZE(obj) ? (long)((PyLongObject *)obj)->ob_digit[0] : 0;
#endif
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) PyErr_Clear();
    return v;
}

/* ---- threads ---------------------------------------------------------------------------- */

typedef struct {
    uint32_t tid;
    uint64_t epoch;        /* clock << CLOCK_SHIFT | tid << 1 */
    VC vc;
    uint32_t nheld, capheld;
    uint32_t *held_id, *held_count;   /* locks held: sync id and re-entry count */
    uint32_t *held_site;   /* probe site of each held lock's outermost acquisition */
    void *order_seen;      /* Map: (lockset << 32 | lock) already shown to the lock-order graph */
    uint32_t lockset;      /* interned id of the sorted held ids */
    uint32_t extra;        /* interned (lockset, no stack): what its accesses record */
} ThreadState;

/* initial-exec: a plain offset from the thread pointer instead of a __tls_get_addr call on
 * every probe (8 bytes fit glibc's surplus static TLS for dlopen'ed modules) */
static __thread ThreadState *tls_state __attribute__((tls_model("initial-exec")));
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

/* ---- pointer-keyed hash map --------------------------------------------------------------
 * Open addressing with linear probing, at most three quarters full (the table of every
 * tracked object is a good part of racewatch's memory), and deletion by shifting back the
 * entries that follow (no tombstones): programs that make and drop millions of objects would
 * otherwise fill the table with dead slots that every lookup of a new object has to walk.
 * Key 0 is the empty slot. */

typedef struct {
    uintptr_t key;
    void *value;
} Slot;

typedef struct {
    Slot *slots;
    size_t cap, used;
} Map;

/* Objects allocated together (one allocator pool) are mostly used together: their slots are
 * kept together too, in address order within each 64 KiB of memory, and only the 64 KiB
 * regions are scattered. A lookup then mostly finds its slot in a cache line a neighbour's
 * lookup just loaded, where a hash of the whole address would miss the cache every time
 * (measured with perf on an allocation-heavy workload: the slot load was the costliest
 * instruction of the fast path). Objects are 16-byte aligned, hence the shift by 4. */
static inline size_t map_home(const Map *m, uintptr_t k) {
    uint64_t region = (uint64_t)(k >> 16) * 0x9E3779B97F4A7C15ull;
    return (size_t)((k >> 4) + (region >> 32)) & (m->cap - 1);
}

static inline void *map_get(const Map *m, uintptr_t key) {
    if (!m->cap) return NULL;
    for (size_t i = map_home(m, key), mask = m->cap - 1;; i = (i + 1) & mask) {
        const Slot *s = &m->slots[i];
        if (s->key == key) return s->value;
        if (!s->key) return NULL;
    }
}

static void map_insert(Map *m, uintptr_t key, void *value) {
    for (size_t i = map_home(m, key), mask = m->cap - 1;; i = (i + 1) & mask) {
        Slot *s = &m->slots[i];
        if (!s->key || s->key == key) {
            if (!s->key) m->used++;
            s->key = key;
            s->value = value;
            return;
        }
    }
}

static int map_resize(Map *m, size_t cap) {
    Slot *old = m->slots;
    size_t oldcap = m->cap;
    Slot *slots = PyMem_RawCalloc(cap, sizeof(Slot));
    if (!slots) { PyErr_NoMemory(); return -1; }
    m->slots = slots;
    m->cap = cap;   /* a power of two */
    m->used = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key) map_insert(m, old[i].key, old[i].value);
    PyMem_RawFree(old);
    return 0;
}

static int map_put(Map *m, uintptr_t key, void *value) {
    if ((m->used + 1) * 2 > m->cap && map_resize(m, m->cap ? m->cap * 2 : 1024) < 0)
        return -1;
    map_insert(m, key, value);
    return 0;
}

/* The record of the object accessed last (consecutive accesses are mostly to one object:
 * self.a, self.b ...). Cleared whenever any record leaves a table. */
static uintptr_t last_addr;
static void *last_record;

static void map_del(Map *m, uintptr_t key) {
    last_addr = 0;
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = map_home(m, key);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key) return;
        i = (i + 1) & mask;
    }
    /* shift back every later entry of the run whose home is not between the hole and it */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = map_home(m, m->slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].value = NULL;
    m->used--;
}

static void map_clear(Map *m) {
    last_addr = 0;
    PyMem_RawFree(m->slots);
    memset(m, 0, sizeof(*m));
}

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

/* ---- tracked objects: shadow records and sync vars, tied to their object's life ----------- */

typedef struct {
    uint64_t epoch;   /* 0: none */
    uint32_t site;
    uint32_t extra;   /* interned (lockset, stack) of the access; 0: no lock held, no stack */
} Access;

/* A record is one allocation: a header, the keys of its `capcells` cells (all the fast path
 * compares), then the cells' state in one of two layouts:
 * - compact: every access recorded so far was made in one epoch (`epoch0`) with one interned
 *   (lockset, stack) (`extra0`). That is how most objects live and die: made, used and dropped
 *   by one thread between two synchronizations. A cell then keeps only which of its last write
 *   and read happened, where, and whether atomically: 8 bytes instead of 32.
 * - full: FastTrack's epochs of the last write and read (hot: the fast path reads them), then
 *   their sites and extras (cold: for the full check and for reports).
 * A record starts compact and turns full for good at the first access that does not fit. */
#define TAG_WEAK 1u    /* key: held through a weakref (compared by identity) */
#define TAG_RACED 2u   /* key: a race was found here; the fast path leaves it to the full
                        * check, which then compares sites too */
#define TAG_MASK ((uintptr_t)3)
#define SHARED_READS UINT64_MAX   /* full r: reads are concurrent, see the cold entry */

typedef struct {
    uint64_t w, r;   /* epochs of the last write and read */
} Epochs;

typedef struct {
    uint32_t n;      /* one Access per tid below n */
    Access a[];
} Shared;

typedef struct {
    uint32_t w_site, w_extra;
    union {
        struct { uint32_t site, extra; } one;
        Shared *shared;   /* when full r is SHARED_READS */
    } r;
} Cold;

/* A compact cell's last write and read: 0 for none, else the site + 1, with the top bit set
 * for an atomic access (its epoch is epoch0 | 1). */
typedef struct {
    uint32_t w, r;
} Marks;
#define ATOMIC_MARK 0x80000000u

enum { KIND_RECORD = 1, KIND_SYNC = 2 };

/* What records and sync vars share: the tie to their object. Its address is not kept (the
 * table is keyed by it): whoever frees a tracker knows it from the object, the Ref or `ref`. */
typedef struct {
    PyObject *ref;  /* a Ref (weak), the object itself (strong), or NULL (hooked) */
    uint8_t kind : 2, strong : 1, ignore : 1, hooked : 1;
    uint8_t compact : 1;   /* records: the layout of the cells' state */
    uint32_t ncells;       /* records: cells in use (here, where padding would be) */
} Tracked;

/* A record's index of its cells by hash, once there are many: cell number + 1, 0 for none. */
typedef struct {
    uint32_t cap;   /* a power of two */
    uint32_t slot[];
} Index;

typedef struct {
    Tracked head;
    uint32_t capcells;
    uint32_t extra0;   /* compact: the extra of every access */
    uint64_t epoch0;   /* compact: the epoch of every access (0: none yet) */
    Index *index;
    uintptr_t keys[];  /* a strong reference, or under TAG_WEAK a weakref to the key */
} Record;

#define EPOCHS(rec) ((Epochs *)((rec)->keys + (rec)->capcells))
#define COLD(rec) ((Cold *)(EPOCHS(rec) + (rec)->capcells))
#define MARKS(rec) ((Marks *)((rec)->keys + (rec)->capcells))
#define FIRST_CELLS 2
#define CELL_SIZE(compact) \
    (sizeof(uintptr_t) + ((compact) ? sizeof(Marks) : sizeof(Epochs) + sizeof(Cold)))
#define RECORD_SIZE(cap, compact) (sizeof(Record) + (size_t)(cap) * CELL_SIZE(compact))

/* A cell's state in the full layout's terms, wherever the record keeps it. */
typedef struct {
    uint64_t w, r;
    Cold c;
} CellState;

static inline uint64_t mark_epoch(const Record *rec, uint32_t mark) {
    return mark ? rec->epoch0 | (mark >> 31) : 0;
}

static inline uint32_t mark_site(uint32_t mark) {
    return mark ? (mark & ~ATOMIC_MARK) - 1 : 0;
}

static void cell_load(const Record *rec, uint32_t i, CellState *s) {
    if (!rec->head.compact) {
        s->w = EPOCHS(rec)[i].w;
        s->r = EPOCHS(rec)[i].r;
        s->c = COLD(rec)[i];
        return;
    }
    Marks m = MARKS(rec)[i];
    s->w = mark_epoch(rec, m.w);
    s->r = mark_epoch(rec, m.r);
    s->c.w_site = mark_site(m.w);
    s->c.w_extra = m.w ? rec->extra0 : 0;
    s->c.r.one.site = mark_site(m.r);
    s->c.r.one.extra = m.r ? rec->extra0 : 0;
}

typedef struct {
    Tracked head;
    uint32_t id;   /* M<id> in reports, once held as a lock */
    VC vc;
} SyncVar;

static Map objects, syncs;
static size_t shadow_bytes, shadow_peak;   /* records and sync vars allocated: for stats() */

static inline void account(Py_ssize_t delta) {
    shadow_bytes += (size_t)delta;
    if (shadow_bytes > shadow_peak) shadow_peak = shadow_bytes;
}

static Tracked **strong_list;      /* tracked objects that hold their object */
static size_t nstrong, capstrong, strong_since_sweep;
#define SWEEP_EVERY 4096

/* A weakref subtype that knows its Tracked: the death callback frees it. */
typedef struct {
    PyWeakReference base;
    Tracked *owner;
    uintptr_t addr;   /* the referent's, which is gone when the callback runs */
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

static inline PyObject *untag(uintptr_t key) { return (PyObject *)(key & ~TAG_MASK); }

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

static void hook_dealloc(PyTypeObject *tp) {
    if (!tp || nhooked == MAX_HOOKED || (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return;
    for (int i = 0; i < nhooked; i++) if (hooked[i].type == tp) return;
    hooked[nhooked].type = tp;
    hooked[nhooked].original = tp->tp_dealloc;
    tp->tp_dealloc = hooks[nhooked];
    nhooked++;
}

/* Make the Tracked for `obj`. Allocates Python objects (so GC may run): call with no table
 * pointer held, then insert with tracked_insert. */
/* How many cells records of a type end up with, so a new one is made that size at once
 * instead of growing cell by cell (most objects of a class get the same attributes). */
#define HINT_BITS 10
static struct { PyTypeObject *type; uint32_t cells; } size_hints[1 << HINT_BITS];

static inline size_t hint_slot(PyTypeObject *tp) {
    return (size_t)(((uint64_t)(uintptr_t)tp * 0x9E3779B97F4A7C15ull) >> (64 - HINT_BITS));
}

/* Classes written in Python only: containers' records hold one cell per key or index used,
 * which varies from one container to the next. */
static inline int hinted(PyTypeObject *tp) {
    return (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
           !(tp->tp_flags & (Py_TPFLAGS_LIST_SUBCLASS | Py_TPFLAGS_DICT_SUBCLASS));
}

static uint32_t first_cells(PyTypeObject *tp) {
    if (!hinted(tp)) return FIRST_CELLS;
    size_t i = hint_slot(tp);
    uint32_t n = size_hints[i].type == tp ? size_hints[i].cells : FIRST_CELLS;
    return n < FIRST_CELLS ? FIRST_CELLS : n > 16 ? 16 : n;
}

static void note_cells(PyTypeObject *tp, uint32_t cells) {
    if (!hinted(tp)) return;
    size_t i = hint_slot(tp);
    if (size_hints[i].type != tp || size_hints[i].cells < cells) {
        size_hints[i].type = tp;   /* borrowed: a stale entry only mis-sizes a record */
        size_hints[i].cells = cells;
    }
}

/* Trackers come from pymalloc (the GIL is held wherever one is made or freed): no per-block
 * header, and size classes 16 bytes apart. */
static Tracked *tracked_new(PyObject *obj, uint8_t kind) {
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
static Tracked *tracked_insert(Map *m, PyObject *obj, Tracked *tr) {
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
static void free_all(Tracked **list, size_t n) {
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++) nrefs += tracked_refs(list[i]);
    PyObject **refs = PyMem_RawMalloc(sizeof(PyObject *) * (nrefs + 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) free_tracked(list[i], refs, &k);
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

/* ---- configuration and per-site kinds --------------------------------------------------- */

static uint8_t *site_kinds;
static size_t nsite_kinds;

/* For reads of attribute `name` of instances of `type` (while its version tag holds): the
 * class whose method the read finds, or NULL when the location is the instance's own. Keyed
 * by type and name, so sites that see several classes (polymorphic calls) hit too. */
typedef struct {
    PyTypeObject *type;
    PyObject *name;
    unsigned int version;
    int container;     /* instances are builtin containers (method-kind probes read the shape) */
    PyObject *owner;
} AttrCache;
#define ATTR_CACHE_BITS 12
static AttrCache attr_cache[1 << ATTR_CACHE_BITS];

static inline AttrCache *attr_slot(PyTypeObject *tp, PyObject *name) {
    uint64_t h = ((uint64_t)(uintptr_t)tp ^ ((uint64_t)(uintptr_t)name << 7)) *
                 0x9E3779B97F4A7C15ull;
    return &attr_cache[h >> (64 - ATTR_CACHE_BITS)];
}
/* The cache entry for reads of `name` on instances of `tp`, or NULL if it is not filled. */
static inline const AttrCache *attr_hit(PyTypeObject *tp, PyObject *name) {
    const AttrCache *ac = attr_slot(tp, name);
    return ac->type == tp && ac->name == name && ac->version == tp->tp_version_tag &&
           tp->tp_version_tag ? ac : NULL;
}

static PyObject *on_race;          /* callable(event) or NULL */
static PyObject *ignored_types;    /* tuple of types whose instances are never shared */
static PyObject *proxy_types;      /* dict: lock type -> None or callable giving its clock obj */
#define MAX_PROXIED 8
static PyTypeObject *proxied[MAX_PROXIED];   /* the keys of proxy_types */
static int nproxied;
static PyObject *shape_key;        /* the key of a container's shape (locations.SHAPE) */
static PyTypeObject *deque_type;   /* collections.deque */
static PyTypeObject *defaultdict_type;   /* collections.defaultdict */
static int history_full;

#define MAX_ACCESSORS 32
static struct { PyObject *func; int is_write, shape; } accessors[MAX_ACCESSORS];
static int naccessors;

/* ---- locksets --------------------------------------------------------------------------- */

static uint32_t intern_extra(uint32_t lockset, uint32_t stack);

static PyObject *lockset_ids;      /* dict: tuple of sync ids -> int */
static PyObject *lockset_list;     /* list: id -> tuple */
static PyObject *sync_names;       /* list: lock id -> (type, address) */

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

static int update_lockset(ThreadState *t, uint32_t sync_id, int delta, uint32_t site) {
    uint32_t i = 0;
    while (i < t->nheld && t->held_id[i] < sync_id) i++;
    if (i < t->nheld && t->held_id[i] == sync_id) {
        if (delta > 0) { t->held_count[i]++; return 0; }
        if (--t->held_count[i] > 0) return 0;
        memmove(&t->held_id[i], &t->held_id[i + 1], (t->nheld - i - 1) * sizeof(uint32_t));
        memmove(&t->held_count[i], &t->held_count[i + 1],
                (t->nheld - i - 1) * sizeof(uint32_t));
        memmove(&t->held_site[i], &t->held_site[i + 1], (t->nheld - i - 1) * sizeof(uint32_t));
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
            uint32_t *c = PyMem_RawRealloc(t->held_site, cap * sizeof(uint32_t));
            if (!c) { PyErr_NoMemory(); return -1; }
            t->held_site = c;
            t->capheld = cap;
        }
        memmove(&t->held_id[i + 1], &t->held_id[i], (t->nheld - i) * sizeof(uint32_t));
        memmove(&t->held_count[i + 1], &t->held_count[i], (t->nheld - i) * sizeof(uint32_t));
        memmove(&t->held_site[i + 1], &t->held_site[i], (t->nheld - i) * sizeof(uint32_t));
        t->held_id[i] = sync_id;
        t->held_count[i] = 1;
        t->held_site[i] = site;
        t->nheld++;
    }
    if (intern_lockset(t) < 0) return -1;
    t->extra = intern_extra(t->lockset, 0);
    return 0;
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

/* ---- (lockset, stack) pairs as one small id per access: 0 is (no lock, no stack) ---------- */

static Map extra_ids;                 /* (lockset << 32 | stack) -> id */
static uint32_t *extra_lockset, *extra_stack;
static uint32_t nextra = 1, capextra;

static uint32_t intern_extra(uint32_t lockset, uint32_t stack) {
    if (!lockset && !stack) return 0;
    uintptr_t key = (uintptr_t)((uint64_t)lockset << 32 | stack);
    void *found = map_get(&extra_ids, key);
    if (found) return (uint32_t)(uintptr_t)found;
    if (nextra >= capextra) {
        uint32_t cap = capextra ? capextra * 2 : 64;
        uint32_t *l = PyMem_RawRealloc(extra_lockset, cap * sizeof(uint32_t));
        if (!l) return 0;   /* the report then lacks the lockset: never a wrong verdict */
        extra_lockset = l;
        uint32_t *st = PyMem_RawRealloc(extra_stack, cap * sizeof(uint32_t));
        if (!st) return 0;
        extra_stack = st;
        capextra = cap;
    }
    if (map_put(&extra_ids, key, (void *)(uintptr_t)nextra) < 0) { PyErr_Clear(); return 0; }
    extra_lockset[nextra] = lockset;
    extra_stack[nextra] = stack;
    return nextra++;
}

/* ---- races found during one update, reported once the update is complete ----------------- */

typedef struct {
    Access prev;
    int prev_write;
} Found;

#define FOUND_ON_STACK 8   /* more (a write after many concurrent readers) go to the heap */

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
        uint32_t e = p->extra < nextra ? p->extra : 0;
        PyObject *event = Py_BuildValue(
            "(OOIIiiNIIiiNN)", target, key, site, t->tid, is_write, atomic,
            lockset_tuple(t->lockset), p->site, EPOCH_TID(p->epoch), found[i].prev_write,
            (int)(p->epoch & 1), lockset_tuple(e ? extra_lockset[e] : 0),
            stack_tuple(e ? extra_stack[e] : 0));
        if (!event) return -1;
        PyObject *r = PyObject_CallOneArg(on_race, event);
        Py_DECREF(event);
        if (!r) PyErr_WriteUnraisable(on_race);   /* never into the program's own flow */
        Py_XDECREF(r);
    }
    return 0;
}

/* ---- accesses ----------------------------------------------------------------------------- */

/* Keys compared by value are those whose hashing and comparison cannot run user code. */
static int safe_key(PyObject *key, int depth) {
    PyTypeObject *tp = Py_TYPE(key);
    if (tp == &PyUnicode_Type || tp == &PyLong_Type || tp == &PyFloat_Type ||
        tp == &PyBool_Type || tp == &PyBytes_Type || key == Py_None)
        return 1;
    if (tp == &PyTuple_Type && depth < 32) {   /* as locations.SAFE_DEPTH */
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(key); i++)
            if (!safe_key(PyTuple_GET_ITEM(key, i), depth + 1)) return 0;
        return 1;
    }
    return 0;
}

/* A key's hash: a str's cached hash read in place, else its value hash if compared by value,
 * else its address. Never user code. */
static inline Py_hash_t key_hash(PyObject *key, int safe) {
    if (PyUnicode_CheckExact(key) && ((PyASCIIObject *)key)->hash != -1)
        return ((PyASCIIObject *)key)->hash;
    if (!safe) return (Py_hash_t)((uintptr_t)key >> 4);
    Py_hash_t h = PyObject_Hash(key);   /* a builtin scalar: cached or cheap */
    if (h == -1) PyErr_Clear();
    return h;
}

static int key_info(PyObject *key, Py_hash_t *hash, uint8_t *safe) {
    *safe = (uint8_t)safe_key(key, 0);
    *hash = key_hash(key, *safe);
    return 0;
}

/* What a weakref or weakref.proxy refers to (borrowed), or NULL once it is dead. */
static PyObject *weak_target(PyObject *ref) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    if (PyWeakref_GetRef(ref, &obj) <= 0) { PyErr_Clear(); return NULL; }
    Py_DECREF(obj);   /* alive: the cell's key is being compared with a live object */
    return obj;
#else
    PyObject *obj = PyWeakref_GET_OBJECT(ref);
    return obj == Py_None ? NULL : obj;
#endif
}

/* The hash a cell is indexed by: its key's value hash if compared by value, else address. */
static Py_hash_t cell_hash(Record *rec, uint32_t i) {
    uintptr_t tagged = rec->keys[i];
    PyObject *held = untag(tagged);
    if (tagged & TAG_WEAK) {
        PyObject *target = weak_target(held);
        return (Py_hash_t)((uintptr_t)(target ? target : held) >> 4);
    }
    if (safe_key(held, 0)) {
        Py_hash_t h = PyObject_Hash(held);   /* builtin scalars: cached or cheap */
        if (h != -1) return h;
        PyErr_Clear();
    }
    return (Py_hash_t)((uintptr_t)held >> 4);
}

static inline int same_key(Record *rec, uint32_t i, PyObject *key, Py_hash_t hash,
                           uint8_t safe) {
    uintptr_t tagged = rec->keys[i];
    PyObject *held = untag(tagged);
    if (tagged & TAG_WEAK) return weak_target(held) == key;   /* dead: an address reused */
    if (held == key) return 1;
    /* attribute names and most dict keys are strs with their hash cached: a different hash
     * settles it without hashing anything (a new attribute is compared with every cell) */
    if (PyUnicode_CheckExact(held) && ((PyASCIIObject *)held)->hash != -1 &&
        ((PyASCIIObject *)held)->hash != hash)
        return 0;
    if (!safe || !safe_key(held, 0) || cell_hash(rec, i) != hash) return 0;
    int eq = PyObject_RichCompareBool(held, key, Py_EQ);   /* builtin scalars only */
    if (eq < 0) { PyErr_Clear(); return 0; }
    return eq;
}

static int find_cell(Record *rec, PyObject *key, Py_hash_t hash, uint8_t safe) {
    if (!rec->index) {
        for (uint32_t i = 0, n = rec->head.ncells; i < n; i++)
            if (same_key(rec, i, key, hash, safe)) return (int)i;
        return -1;
    }
    uint32_t mask = rec->index->cap - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        uint32_t slot = rec->index->slot[i];
        if (!slot) return -1;
        if (same_key(rec, slot - 1, key, hash, safe)) return (int)slot - 1;
    }
}

/* Records with many cells (a module's globals, a big dict) find them through an index. */
static int reindex(Record *rec) {
    uint32_t cap = 16;
    while (cap < rec->head.ncells * 2 + 2) cap *= 2;
    Index *index = PyMem_RawCalloc(1, sizeof(Index) + cap * sizeof(uint32_t));
    if (!index) { PyErr_NoMemory(); return -1; }
    index->cap = cap;
    for (uint32_t n = 0; n < rec->head.ncells; n++) {
        uint32_t i = (uint32_t)cell_hash(rec, n) & (cap - 1);
        while (index->slot[i]) i = (i + 1) & (cap - 1);
        index->slot[i] = n + 1;
    }
    PyMem_RawFree(rec->index);
    rec->index = index;
    return 0;
}

/* Remake `rec` with room for `cap` cells in the given layout (a compact record may turn full,
 * never the reverse). The record moves: everything that points at it follows. */
static Record *resize_record(PyObject *obj, Record *rec, uint32_t cap, int compact) {
    Record *moved = PyMem_Malloc(RECORD_SIZE(cap, compact));
    if (!moved) { PyErr_NoMemory(); return NULL; }
    account((Py_ssize_t)(RECORD_SIZE(cap, compact) -
                         RECORD_SIZE(rec->capcells, rec->head.compact)));
    memcpy(moved, rec, sizeof(Record));
    moved->capcells = cap;
    moved->head.compact = (uint8_t)compact;
    memcpy(moved->keys, rec->keys, rec->head.ncells * sizeof(uintptr_t));
    if (compact) {
        memcpy(MARKS(moved), MARKS(rec), rec->head.ncells * sizeof(Marks));
    } else if (!rec->head.compact) {
        memcpy(EPOCHS(moved), EPOCHS(rec), rec->head.ncells * sizeof(Epochs));
        memcpy(COLD(moved), COLD(rec), rec->head.ncells * sizeof(Cold));
    } else {
        for (uint32_t i = 0; i < rec->head.ncells; i++) {
            CellState st;
            cell_load(rec, i, &st);
            EPOCHS(moved)[i] = (Epochs){st.w, st.r};
            COLD(moved)[i] = st.c;
        }
        moved->epoch0 = 0;
        moved->extra0 = 0;
    }
    if (map_put(&objects, (uintptr_t)obj, moved) < 0) {   /* replaces the entry */
        account((Py_ssize_t)(RECORD_SIZE(rec->capcells, rec->head.compact) -
                             RECORD_SIZE(cap, compact)));
        PyMem_Free(moved);
        return NULL;
    }
    if (moved->head.ref && !moved->head.strong) ((Ref *)moved->head.ref)->owner = &moved->head;
    if (moved->head.strong)
        for (size_t i = 0; i < nstrong; i++)
            if (strong_list[i] == &rec->head) strong_list[i] = &moved->head;
    last_addr = 0;
    PyMem_Free(rec);
    return moved;
}

/* Make room for one more cell. */
static Record *grow_record(PyObject *obj, Record *rec) {
    if (rec->head.ncells < rec->capcells) return rec;
    /* small records (most objects have a handful of attributes) grow a cell at a time */
    uint32_t cap = rec->capcells < 6 ? rec->capcells + 1 : rec->capcells + rec->capcells / 2;
    return resize_record(obj, rec, cap, rec->head.compact);
}

static inline uint32_t mark_of(uint64_t epoch, uint32_t site) {
    return epoch ? (site + 1) | (epoch & 1 ? ATOMIC_MARK : 0) : 0;
}

/* Whether state `s` can be kept in compact `rec`: its accesses share the record's epoch and
 * extra (which the first access sets). */
static int fits_compact(Record *rec, const CellState *s) {
    if (s->r == SHARED_READS) return 0;
    uint64_t epoch = rec->epoch0;
    uint32_t extra = rec->extra0;
    const struct { uint64_t epoch; uint32_t site, extra; } acc[2] = {
        {s->w, s->c.w_site, s->c.w_extra}, {s->r, s->c.r.one.site, s->c.r.one.extra}};
    for (int k = 0; k < 2; k++) {
        if (!acc[k].epoch) continue;
        if (acc[k].site >= ATOMIC_MARK - 1) return 0;
        if (!epoch) {
            epoch = acc[k].epoch & ~(uint64_t)1;
            extra = acc[k].extra;
        } else if ((acc[k].epoch & ~(uint64_t)1) != epoch || acc[k].extra != extra) {
            return 0;
        }
    }
    rec->epoch0 = epoch;
    rec->extra0 = extra;
    return 1;
}

/* Keep `s` as cell i's state; a compact record that cannot hold it turns full (and moves). */
static int cell_store(PyObject *obj, Record **recp, uint32_t i, const CellState *s) {
    Record *rec = *recp;
    if (rec->head.compact) {
        if (fits_compact(rec, s)) {
            MARKS(rec)[i] = (Marks){mark_of(s->w, s->c.w_site), mark_of(s->r, s->c.r.one.site)};
            return 0;
        }
        if (!(rec = resize_record(obj, rec, rec->capcells, 0))) return -1;
        *recp = rec;
    }
    EPOCHS(rec)[i] = (Epochs){s->w, s->r};
    COLD(rec)[i] = s->c;
    return 0;
}

/* Add a cell for `key`; returns its number and sets *recp to the (maybe moved) record. */
static int add_cell(PyObject *obj, Record **recp, PyObject *key, Py_hash_t hash,
                    uint8_t safe) {
    /* A key compared by identity is held weakly where it can be: a cell must not keep a
     * program's object alive (its finalizer, its weakrefs, its refcount would change). */
    PyObject *held = NULL;
    if (!safe && PyType_SUPPORTS_WEAKREFS(Py_TYPE(key))) {
        held = PyWeakref_NewRef(key, NULL);   /* may run GC: find the record again after it */
        if (!held) PyErr_Clear();
        *recp = map_get(&objects, (uintptr_t)obj);
        if (!*recp) { Py_XDECREF(held); return -1; }
    }
    Record *rec = grow_record(obj, *recp);
    if (!rec) { Py_XDECREF(held); return -1; }
    *recp = rec;
    uint32_t i = rec->head.ncells++;
    if (!held) note_cells(Py_TYPE(obj), rec->head.ncells);
    rec->keys[i] = held ? (uintptr_t)held | TAG_WEAK : (uintptr_t)Py_NewRef(key);
    if (rec->head.compact) {
        MARKS(rec)[i] = (Marks){0, 0};
    } else {
        EPOCHS(rec)[i] = (Epochs){0, 0};
        memset(&COLD(rec)[i], 0, sizeof(Cold));
    }
    if (rec->head.ncells > 8 && (!rec->index || rec->head.ncells * 2 + 2 > rec->index->cap) &&
        reindex(rec) < 0)
        return -1;
    if (rec->index) {
        uint32_t mask = rec->index->cap - 1, j = (uint32_t)hash & mask;
        while (rec->index->slot[j]) j = (j + 1) & mask;
        rec->index->slot[j] = rec->head.ncells;
    }
    return (int)i;
}

/* FastTrack's same-epoch rule: this thread already did such an access in this epoch (plain
 * covers atomic). On a location known to race, only at the same site: a second site racing
 * with the same access is a pair of its own to report. */
static inline int seen(uint64_t last, uint32_t last_site, uint64_t now, int atomic,
                       uint32_t site, int raced) {
    if (last != now && !(atomic && (last | 1) == now)) return 0;
    return !raced || last_site == site;
}

static inline int conflicts(const Access *prev, int atomic, const VC *vc) {
    return prev->epoch && !(atomic && (prev->epoch & 1)) && !ordered(prev->epoch, vc);
}

/* ---- where an access lands (runtime/locations.py is the reference) ---------------------- */

enum { C_NONE, C_DICT, C_LIST, C_SET, C_DEQUE, C_BYTEARRAY };

static PyObject *getitem_name, *dict_getitem, *list_getitem;   /* set up at import */

/* Builtin containers, and subclasses that keep the builtin item access; other types are seen
 * through their own (instrumented) code. (A subclass's slot always differs: dict's and list's
 * __getitem__ are method descriptors, so what the name resolves to is compared instead.) */
static int type_kind(PyTypeObject *tp) {
    if (PyType_IsSubtype(tp, &PyDict_Type))
        return _PyType_Lookup(tp, getitem_name) == dict_getitem ? C_DICT : C_NONE;
    if (PyType_IsSubtype(tp, &PyList_Type))
        return _PyType_Lookup(tp, getitem_name) == list_getitem ? C_LIST : C_NONE;
    if (PyType_IsSubtype(tp, &PySet_Type)) return C_SET;   /* frozensets are never written */
    if (deque_type && PyType_IsSubtype(tp, deque_type)) return C_DEQUE;
    if (PyType_IsSubtype(tp, &PyByteArray_Type)) return C_BYTEARRAY;
    return C_NONE;
}

/* The kind of each type seen, while its version tag holds (its bases and __getitem__ could
 * only change with it). */
#define KIND_CACHE_BITS 10
static struct { PyTypeObject *type; unsigned int version; int kind; } kind_cache[1 << KIND_CACHE_BITS];

static int container_kind(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyDict_Type) return C_DICT;
    if (tp == &PyList_Type) return C_LIST;
    if (tp == &PySet_Type) return C_SET;
    if (tp == deque_type) return C_DEQUE;
    if (tp == &PyByteArray_Type) return C_BYTEARRAY;
    /* a static type that is not a list or dict subclass (int, str, tuple...) is no container:
     * decided by its flags, since it may have no version tag to cache the answer under */
    if (!(tp->tp_flags & (Py_TPFLAGS_HEAPTYPE | Py_TPFLAGS_LIST_SUBCLASS |
                          Py_TPFLAGS_DICT_SUBCLASS)))
        return C_NONE;
    unsigned int version = tp->tp_version_tag;
    size_t i = (size_t)(((uint64_t)(uintptr_t)tp * 0x9E3779B97F4A7C15ull) >> (64 - KIND_CACHE_BITS));
    if (version && kind_cache[i].type == tp && kind_cache[i].version == version)
        return kind_cache[i].kind;
    int kind = type_kind(tp);
    if (version) {
        kind_cache[i].type = tp;
        kind_cache[i].version = version;
        kind_cache[i].kind = kind;
    }
    return kind;
}

static int find_dict(PyObject *o, void *arg) {
    if (PyDict_Check(o)) { *(PyObject **)arg = o; return 1; }
    return 0;
}

static inline int is_view_type(PyTypeObject *tp) {
    return tp == &PyDictKeys_Type || tp == &PyDictValues_Type || tp == &PyDictItems_Type;
}

/* Dict views cannot be subclassed from Python; OrderedDict's views derive directly from
 * them in C. So the type or its base decides, without a subtype walk per probe. */
static inline int is_dict_view(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    return is_view_type(tp) || (tp->tp_base && is_view_type(tp->tp_base));
}

/* The container whose shape reading `obj` reads: a dict view reads its dict. */
static PyObject *shape_owner(PyObject *obj) {
    if (is_dict_view(obj)) {
        PyObject *dict = NULL;
        Py_TYPE(obj)->tp_traverse(obj, find_dict, &dict);
        return dict;
    }
    return container_kind(obj) ? obj : NULL;
}

/* Whether a class attribute is a method: what instances normally read from the class, never
 * having it themselves (functions, method descriptors, class and static methods). */
static int is_method(PyObject *attr) {
    return PyFunction_Check(attr) || Py_IS_TYPE(attr, &PyMethodDescr_Type) ||
           Py_IS_TYPE(attr, &PyClassMethodDescr_Type) ||
           Py_IS_TYPE(attr, &PyClassMethod_Type) || Py_IS_TYPE(attr, &PyStaticMethod_Type);
}

/* The class a read of `obj.key` finds a method in, or NULL (the instance is the owner).
 * Reading `o.m()` reads the class's attribute m: that is what `Class.m = other` writes, and
 * instances do not each get a cell per method name. */
static PyObject *method_owner(PyTypeObject *tp, PyObject *key) {
    if (!PyUnicode_Check(key)) return NULL;
    PyObject *attr = _PyType_Lookup(tp, key);   /* the type's method cache; no user code */
    if (!attr || !is_method(attr)) return NULL;
    PyObject *mro = tp->tp_mro;
    for (Py_ssize_t i = 0; mro && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *cls = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(cls->tp_flags & Py_TPFLAGS_HEAPTYPE) || !cls->tp_dict) continue;
        PyObject *found = PyDict_GetItemWithError(cls->tp_dict, key);   /* a str key */
        if (found == attr) return (PyObject *)cls;
        if (!found && PyErr_Occurred()) { PyErr_Clear(); return NULL; }
    }
    return NULL;
}

/* The owner of attribute `key` of `obj` read at `site` (filling the site's cache). */
static PyObject *read_owner(PyObject *obj, PyObject *key, long site) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return obj;
    const AttrCache *ac = attr_hit(tp, key);
    if (ac) return ac->owner ? ac->owner : obj;
    PyObject *owner = method_owner(tp, key);
    if (tp->tp_version_tag)   /* borrowed pointers: a changed or new type has another tag */
        *attr_slot(tp, key) = (AttrCache){tp, key, tp->tp_version_tag,
                                          container_kind(obj) != C_NONE, owner};
    return owner ? owner : obj;
}

/* CPython's `super` object (Objects/typeobject.c, the same on 3.11-3.13): its fields are
 * read directly, as attribute lookups on it could run descriptors. */
typedef struct {
    PyObject_HEAD
    PyTypeObject *type;       /* __thisclass__ */
    PyObject *obj;
    PyTypeObject *obj_type;   /* __self_class__ */
} SuperObject;

/* The class whose attribute `super().key` reads, or NULL (no error): what
 * runtime/superattr.py's owner() computes for the twin. `obj` is a `super` object (3.11
 * probes) or the (class, self) pair 3.12+ probes pass. Borrowed: classes in a live MRO. */
static PyObject *super_lookup(PyObject *obj, PyObject *key) {
    PyTypeObject *start, *instance;
    if (Py_IS_TYPE(obj, &PySuper_Type)) {
        start = ((SuperObject *)obj)->type;
        instance = ((SuperObject *)obj)->obj_type;
    } else if (PyTuple_CheckExact(obj) && PyTuple_GET_SIZE(obj) == 2 &&
               PyType_Check(PyTuple_GET_ITEM(obj, 0))) {
        start = (PyTypeObject *)PyTuple_GET_ITEM(obj, 0);
        PyObject *self = PyTuple_GET_ITEM(obj, 1);
        instance = PyType_Check(self) ? (PyTypeObject *)self : Py_TYPE(self);
    } else {
        return NULL;
    }
    if (!instance || !start || !PyUnicode_CheckExact(key)) return NULL;
    PyObject *mro = instance->tp_mro;
    if (!mro || !PyTuple_Check(mro)) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(mro), i = 0;
    while (i < n && PyTuple_GET_ITEM(mro, i) != (PyObject *)start) i++;
    for (i++; i < n; i++) {
        PyTypeObject *cls = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *dict = PyType_GetDict(cls);   /* static builtin types keep it elsewhere */
#else
        PyObject *dict = Py_XNewRef(cls->tp_dict);
#endif
        if (!dict) { PyErr_Clear(); continue; }
        int has = PyDict_Contains(dict, key);   /* an exact str key: no user code runs */
        Py_DECREF(dict);
        if (has < 0) { PyErr_Clear(); return NULL; }
        if (has) return (PyObject *)cls;
    }
    return NULL;
}

/* The owner of attribute `key` of `obj`, or NULL (no error) when it cannot race. */
static PyObject *attr_owner(PyObject *obj, PyObject *key) {
    if (PyWeakref_CheckProxy(obj) && !(obj = weak_target(obj))) return NULL;
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp == &PySuper_Type) return super_lookup(obj, key);
    if (PyModule_CheckExact(obj)) return PyModule_GetDict(obj);   /* attribute == global */
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && tp->tp_dictoffset == 0)
        return NULL;   /* an instance of a static type without a __dict__ */
    return obj;
}

typedef struct {
    PyObject *owner, *key;   /* new references */
    int is_write, atomic;
} Loc;

static int add_loc(Loc *locs, int n, PyObject *owner, PyObject *key, int is_write, int atomic) {
    if (!owner) return n;
    Py_INCREF(owner);   /* held for the probe: making its record may run GC */
    Py_INCREF(key);
    locs[n] = (Loc){owner, key, is_write, atomic};
    return n + 1;
}

/* The length of a builtin container without calling a subclass's own __len__ (-1: unknown). */
static Py_ssize_t builtin_len(PyObject *obj) {
    if (PyList_Check(obj)) return PyList_GET_SIZE(obj);
    if (PyByteArray_Check(obj)) return PyByteArray_GET_SIZE(obj);
    if (deque_type && Py_TYPE(obj) == deque_type) {
        Py_ssize_t n = PyObject_Size(obj);
        if (n < 0) PyErr_Clear();
        return n;
    }
    return -1;
}

/* A list-like index, made non-negative; NULL (no error) when the key is not an int. */
static PyObject *normal_index(PyObject *obj, PyObject *key) {
    if (!PyLong_CheckExact(key)) return NULL;
    Py_ssize_t i = PyLong_AsSsize_t(key);
    if (i == -1 && PyErr_Occurred()) { PyErr_Clear(); return NULL; }
    if (i >= 0) return Py_NewRef(key);
    Py_ssize_t n = builtin_len(obj);
    if (n < 0) return NULL;
    return PyLong_FromSsize_t(i + n);
}

#define SLICE_ITEMS 16   /* a slice covers its items; at most this many are recorded */
#define MAX_LOCS (2 + SLICE_ITEMS)

static int plain_bound(PyObject *b) { return b == Py_None || PyLong_CheckExact(b); }

/* A slice read or assignment: the shape, and the items it covers. `bounds` is a slice (3.11)
 * or the (start, stop) pair 3.12+ probes pass. Only int bounds are looked at: others would
 * mean calling __index__. */
static int slice_locs(PyObject *obj, PyObject *bounds, int is_write, Loc *locs) {
    int n = add_loc(locs, 0, obj, shape_key, is_write, 0);
    PyObject *start, *stop, *step = Py_None;
    if (PySlice_Check(bounds)) {
        start = ((PySliceObject *)bounds)->start;
        stop = ((PySliceObject *)bounds)->stop;
        step = ((PySliceObject *)bounds)->step;
    } else if (PyTuple_CheckExact(bounds) && PyTuple_GET_SIZE(bounds) == 2) {
        start = PyTuple_GET_ITEM(bounds, 0);
        stop = PyTuple_GET_ITEM(bounds, 1);
    } else {
        return n;
    }
    if (!plain_bound(start) || !plain_bound(stop) || !plain_bound(step)) return n;
    PyObject *slice = PySlice_New(start, stop, step);
    Py_ssize_t len = builtin_len(obj), first, last, by;
    if (!slice || len < 0 || PySlice_Unpack(slice, &first, &last, &by) < 0) {
        Py_XDECREF(slice);
        PyErr_Clear();
        return n;
    }
    Py_DECREF(slice);
    Py_ssize_t count = PySlice_AdjustIndices(len, &first, &last, by);
    for (Py_ssize_t i = 0; i < count && i < SLICE_ITEMS; i++) {
        PyObject *index = PyLong_FromSsize_t(first + i * by);
        if (!index) { PyErr_Clear(); return n; }
        n = add_loc(locs, n, obj, index, is_write, 0);
        Py_DECREF(index);
    }
    return n;
}

static int item_locs(PyObject *obj, PyObject *key, int is_write, int delete, Loc *locs) {
    int kind = container_kind(obj);
    if (kind == C_NONE || kind == C_SET) return 0;
    if (PySlice_Check(key)) return kind == C_DICT ? 0 : slice_locs(obj, key, is_write, locs);
    if (kind == C_DICT) {
        int n = add_loc(locs, 0, obj, key, is_write, 0);
        if (delete) return add_loc(locs, n, obj, shape_key, 1, 0);
        if (safe_key(key, 0)) {   /* only then is the membership test free of user code */
            int present = PyDict_Contains(obj, key);
            if (present < 0) { PyErr_Clear(); return n; }
            /* a new key changes the shape, atomically for `D[x] = y` (documented atomic); a
             * defaultdict's __missing__ inserts on a read, running the factory in between */
            if (!present && (is_write ||
                             (defaultdict_type && PyObject_TypeCheck(obj, defaultdict_type))))
                n = add_loc(locs, n, obj, shape_key, 1, is_write);
        }
        return n;
    }
    PyObject *index = normal_index(obj, key);
    if (!index) return 0;
    int n = add_loc(locs, 0, obj, index, is_write || delete, 0);
    Py_DECREF(index);
    return delete ? add_loc(locs, n, obj, shape_key, 1, 0) : n;
}

/* The accesses one probe stands for (at most MAX_LOCS), as new references in `locs`; -1 on
 * error. */
static int resolve(PyObject *obj, PyObject *key, uint8_t kind, int is_write, long site,
                   Loc *locs) {
    switch (kind) {
    case K_ATTR: {
        PyObject *owner = attr_owner(obj, key);
        if (owner && !is_write) owner = read_owner(owner, key, site);
        return add_loc(locs, 0, owner, key, is_write, 0);
    }
    case K_SUPER: return add_loc(locs, 0, super_lookup(obj, key), key, 0, 0);
    case K_GLOBAL: return add_loc(locs, 0, PyEval_GetGlobals(), key, is_write, 0);
    case K_METHOD_READ: case K_METHOD_WRITE: case K_METHOD_ATOMIC_READ:
    case K_METHOD_ATOMIC_WRITE:
        if (container_kind(obj))
            return add_loc(locs, 0, obj, shape_key,
                           kind == K_METHOD_WRITE || kind == K_METHOD_ATOMIC_WRITE,
                           kind == K_METHOD_ATOMIC_READ || kind == K_METHOD_ATOMIC_WRITE);
        {
            PyObject *owner = attr_owner(obj, key);
            return add_loc(locs, 0, owner ? read_owner(owner, key, -1) : NULL, key, 0, 0);
        }
    case K_ITEM: return item_locs(obj, key, is_write, 0, locs);
    case K_ITEM_DELETE: return item_locs(obj, key, 1, 1, locs);
    case K_SLICE: {
        int kind = container_kind(obj);
        return kind == C_NONE || kind == C_DICT ? 0 : slice_locs(obj, key, is_write, locs);
    }
    case K_ITER: return add_loc(locs, 0, shape_owner(obj), shape_key, is_write, 0);
    case K_CONTAINS:
        if (container_kind(obj) == C_DICT) return add_loc(locs, 0, obj, key, 0, 0);
        return add_loc(locs, 0, shape_owner(obj), shape_key, 0, 0);
    case K_EQ: {
        int n = add_loc(locs, 0, shape_owner(obj), shape_key, 0, 0);
        return add_loc(locs, n, shape_owner(key), shape_key, 0, 0);
    }
    default: return add_loc(locs, 0, obj, key, is_write, 0);   /* CELL, unregistered sites */
    }
}

/* FastTrack's same-epoch test on a cell's state (nothing new to learn from this access). */
static int same_as_last(const CellState *s, uintptr_t key, ThreadState *t, uint64_t now,
                        int atomic, uint32_t site, int is_write) {
    int raced = (key & TAG_RACED) != 0;
    if (is_write) return seen(s->w, s->c.w_site, now, atomic, site, raced);
    if (s->r != SHARED_READS) return seen(s->r, s->c.r.one.site, now, atomic, site, raced);
    Shared *sh = s->c.r.shared;
    return t->tid < sh->n && seen(sh->a[t->tid].epoch, sh->a[t->tid].site, now, atomic, site,
                                  raced);
}

static PyObject *access_location(PyObject *target, PyObject *key, ThreadState *t, long site,
                                 int is_write, int atomic) {
    Py_hash_t hash;
    uint8_t safe;
    if (key_info(key, &hash, &safe) < 0) return NULL;
    uint64_t now = t->epoch | atomic;

    Record *rec = map_get(&objects, (uintptr_t)target);
    if (!rec) {
        Tracked *fresh = tracked_new(target, KIND_RECORD);   /* may run GC */
        if (!fresh) return NULL;
        if (!map_get(&objects, (uintptr_t)target)) {
            /* by type only: isinstance() could read obj.__class__ through user code */
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(ignored_types); i++) {
                PyObject *tp = PyTuple_GET_ITEM(ignored_types, i);
                if (PyType_Check(tp) && PyType_IsSubtype(Py_TYPE(target), (PyTypeObject *)tp))
                    fresh->ignore = 1;
            }
        }
        rec = (Record *)tracked_insert(&objects, target, fresh);
        if (!rec) return NULL;
    }
    if (rec->head.ignore) Py_RETURN_NONE;
    int i = find_cell(rec, key, hash, safe);
    CellState st;
    if (i >= 0) {
        cell_load(rec, i, &st);
        if (same_as_last(&st, rec->keys[i], t, now, atomic, (uint32_t)site, is_write))
            Py_RETURN_NONE;
    }
    uint32_t extra = t->extra;
    if (history_full) {
        uint32_t stack = capture_stack();   /* may run GC: look the record up again */
        rec = map_get(&objects, (uintptr_t)target);
        if (!rec) Py_RETURN_NONE;   /* cannot happen while `target` is alive; be safe */
        extra = intern_extra(t->lockset, stack);
        i = find_cell(rec, key, hash, safe);
        if (i >= 0) {   /* code run by that GC may have made this very access meanwhile */
            cell_load(rec, i, &st);
            if (same_as_last(&st, rec->keys[i], t, now, atomic, (uint32_t)site, is_write))
                Py_RETURN_NONE;
        }
    }
    if (i < 0) {
        if ((i = add_cell(target, &rec, key, hash, safe)) < 0) return NULL;
        cell_load(rec, i, &st);
    }

    /* the record stays put from here to cell_store: nothing below allocates Python objects */
    Found on_stack[FOUND_ON_STACK], *found = on_stack;
    int nfound = 0;
    const VC *vc = &t->vc;
    Access last_write = {st.w, st.c.w_site, st.c.w_extra};
    Access mine = {now, (uint32_t)site, extra};
    if (conflicts(&last_write, atomic, vc)) found[nfound++] = (Found){last_write, 1};
    if (is_write) {
        if (st.r == SHARED_READS) {
            Shared *sh = st.c.r.shared;
            if (sh->n + 1 > FOUND_ON_STACK) {
                found = PyMem_RawMalloc((sh->n + 1) * sizeof(Found));
                if (!found) return PyErr_NoMemory();
                found[0] = on_stack[0];
            }
            for (uint32_t k = 0; k < sh->n; k++)
                if (conflicts(&sh->a[k], atomic, vc)) found[nfound++] = (Found){sh->a[k], 0};
            PyMem_RawFree(sh);
        } else {
            Access last_read = {st.r, st.c.r.one.site, st.c.r.one.extra};
            if (conflicts(&last_read, atomic, vc)) found[nfound++] = (Found){last_read, 0};
        }
        st.w = now;
        st.c.w_site = (uint32_t)site;
        st.c.w_extra = extra;
        st.r = 0;
        st.c.r.one.site = st.c.r.one.extra = 0;
    } else if (st.r == SHARED_READS) {
        Shared *sh = st.c.r.shared;
        if (t->tid >= sh->n) {
            Shared *bigger = PyMem_RawRealloc(sh, sizeof(Shared) + (t->tid + 1) * sizeof(Access));
            if (!bigger) return PyErr_NoMemory();
            memset(bigger->a + bigger->n, 0, (t->tid + 1 - bigger->n) * sizeof(Access));
            bigger->n = t->tid + 1;
            st.c.r.shared = sh = bigger;
        }
        sh->a[t->tid] = mine;
    } else if (st.r && !ordered(st.r, vc)) {   /* concurrent reads: one per thread from now */
        uint32_t other = EPOCH_TID(st.r);
        uint32_t n = (other > t->tid ? other : t->tid) + 1;
        Shared *sh = PyMem_RawCalloc(1, sizeof(Shared) + n * sizeof(Access));
        if (!sh) return PyErr_NoMemory();
        sh->n = n;
        sh->a[other] = (Access){st.r, st.c.r.one.site, st.c.r.one.extra};
        sh->a[t->tid] = mine;
        st.r = SHARED_READS;
        st.c.r.shared = sh;
    } else {
        st.r = now;
        st.c.r.one.site = (uint32_t)site;
        st.c.r.one.extra = extra;
    }
    if (nfound) rec->keys[i] |= TAG_RACED;
    int err = cell_store(target, &rec, (uint32_t)i, &st) < 0;
    if (err && st.r == SHARED_READS) PyMem_RawFree(st.c.r.shared);
    err = err || (nfound && report_found(target, key, t, (uint32_t)site, is_write, atomic,
                                         found, nfound) < 0);
    if (found != on_stack) PyMem_RawFree(found);
    if (err) return NULL;
    Py_RETURN_NONE;
}

static PyObject *probe(PyObject *obj, PyObject *key, PyObject *site_obj, int is_write) {
    long site = site_of(site_obj);
    uint8_t kind = (size_t)site < nsite_kinds ? site_kinds[site] : K_NONE;
    if (nstrong && strong_since_sweep >= SWEEP_EVERY) sweep();
    ThreadState *t = current();
    if (!t) return NULL;
    Loc locs[MAX_LOCS];
    int n = resolve(obj, key, kind, is_write, site, locs);
    if (n < 0) return NULL;
    PyObject *result = Py_None;
    for (int i = 0; i < n; i++) {
        if (result) {
            PyObject *r = access_location(locs[i].owner, locs[i].key, t, site, locs[i].is_write,
                                          locs[i].atomic);
            if (!r) result = NULL; else Py_DECREF(r);
        }
        Py_DECREF(locs[i].key);
        Py_DECREF(locs[i].owner);
    }
    return result ? Py_NewRef(Py_None) : NULL;
}

/* The builtin container an exact type is (its instances need no further test), or C_NONE. */
static inline int exact_container(PyTypeObject *tp) {
    if (tp == &PyList_Type) return C_LIST;
    if (tp == &PyDict_Type) return C_DICT;
    if (tp == &PySet_Type) return C_SET;
    if (tp == deque_type) return C_DEQUE;
    if (tp == &PyByteArray_Type) return C_BYTEARRAY;
    return C_NONE;
}

/* The record of `owner` if it has one, through a one-entry cache (consecutive probes often
 * touch one object). */
static inline Record *record_of(PyObject *owner) {
    if ((uintptr_t)owner == last_addr) return last_record;
    Record *rec = map_get(&objects, (uintptr_t)owner);
    if (rec) {
        last_addr = (uintptr_t)owner;
        last_record = rec;
    }
    return rec;
}

/* The hot cell of `key` in `rec`, or -1: by hash when the record is indexed (the same hash
 * find_cell uses), else by scanning. A tagged key (weak, or raced) never equals a probe's
 * key: those take the full check. */
static inline int32_t find_hot(const Record *rec, PyObject *key) {
    const uintptr_t *keys = rec->keys;
    if (rec->index) {
        Py_hash_t hash = key_hash(key, PyUnicode_CheckExact(key) || safe_key(key, 0));
        if (hash == -1) return -1;
        uint32_t mask = rec->index->cap - 1;
        for (uint32_t j = (uint32_t)hash & mask;; j = (j + 1) & mask) {
            uint32_t slot = rec->index->slot[j];
            if (!slot) return -1;
            if (keys[slot - 1] == (uintptr_t)key) return (int32_t)slot - 1;
        }
    }
    for (uint32_t i = 0; i < rec->head.ncells; i++)
        if (keys[i] == (uintptr_t)key) return (int32_t)i;
    return -1;
}

/* FastTrack's same-epoch test: whether this thread's last access of this kind to the
 * location (owner, key) is the current epoch, so nothing is left to do. `hint` is where the
 * caller last found the key's cell: instances of one class keep their attributes' cells in
 * the same order, so a site's hint is nearly always right and saves the search. */
static inline Py_ALWAYS_INLINE int same_epoch_at(PyObject *owner, PyObject *key, int is_write, int atomic,
                                uint32_t *hint) {
    ThreadState *t = tls_state;
    if (!t) return 0;
    Record *rec = record_of(owner);
    if (!rec) return 0;
    if (rec->head.ignore) return 1;
    uint32_t i = *hint;
    if (i >= rec->head.ncells || rec->keys[i] != (uintptr_t)key) {
        int32_t found = find_hot(rec, key);
        if (found < 0) return 0;
        *hint = i = (uint32_t)found;
    }
    uint64_t now = t->epoch | (uint64_t)atomic;
    uint64_t last;
    if (rec->head.compact) {
        const Marks *m = &MARKS(rec)[i];
        last = mark_epoch(rec, is_write ? m->w : m->r);
    } else {
        last = is_write ? EPOCHS(rec)[i].w : EPOCHS(rec)[i].r;
        if (last == SHARED_READS) {
            const Shared *sh = COLD(rec)[i].r.shared;
            if (t->tid >= sh->n) return 0;
            last = sh->a[t->tid].epoch;
        }
    }
    return last == now || (atomic && (last | 1) == now);
}

/* Whether a comparison operand may read a shape: a container or a dict view. The scalar types
 * most comparisons see are answered first, by pointer. */
static inline int maybe_container(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyFloat_Type ||
        tp == &PyBool_Type || o == Py_None)
        return 0;
    return is_dict_view(o) || container_kind(o);
}

/* The owner of an access of attribute `key` of `obj` when the fast path can tell it without
 * allocating or looking anything up beyond the (type, name) cache, else NULL: an instance of a
 * class written in Python (a read: whose cache entry holds), a class (its own attribute, as
 * attr_owner has it) or a module (its globals). */
static inline PyObject *fast_attr_owner(PyObject *obj, PyObject *key, int is_write) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        if (is_write) return obj;
        const AttrCache *ac = attr_hit(tp, key);
        return !ac ? NULL : ac->owner ? ac->owner : obj;
    }
    if (tp == &PyType_Type) return obj;
    if (tp == &PyModule_Type) return PyModule_GetDict(obj);
    return NULL;
}

/* The fast path for every probe kind: attributes of instances of classes written in Python,
 * globals, closure cells, and the probes on exact builtin containers whose location needs no
 * allocation. True when nothing is left to do; anything else, new or uncertain, goes the
 * whole way through `probe`. It allocates nothing and takes no references, so no code can
 * run in the middle of it. (Token probes of the commonest kinds have their own copies.) */
static inline int same_epoch(PyObject *obj, PyObject *key, long site, int is_write,
                             uint32_t *hint) {
    if (site < 0 || (size_t)site >= nsite_kinds) return 0;
    PyObject *owner = obj;
    int atomic = 0;
    uint8_t kind = site_kinds[site];
    switch (kind) {
    case K_ATTR:
        owner = fast_attr_owner(obj, key, is_write);
        if (!owner) return 0;
        break;
    case K_GLOBAL: owner = PyEval_GetGlobals(); break;
    case K_CELL: break;
    case K_SUPER:
        owner = super_lookup(obj, key);
        if (!owner) return 0;
        break;
    case K_ITEM:
        /* a list index (small ints are shared objects, so found by address), a dict read */
        if (Py_IS_TYPE(obj, &PyList_Type) && PyLong_CheckExact(key) && site_of(key) >= 0) break;
        if (Py_IS_TYPE(obj, &PyDict_Type) && !is_write) break;
        return 0;
    case K_METHOD_READ: case K_METHOD_WRITE: case K_METHOD_ATOMIC_READ:
    case K_METHOD_ATOMIC_WRITE:
        if (!exact_container(Py_TYPE(obj))) {
            /* a method of an object of a class written in Python: an attribute read, unless
             * the class is a container subclass (the cache entry knows) */
            PyTypeObject *tp = Py_TYPE(obj);
            if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return 0;
            const AttrCache *ac = attr_hit(tp, key);
            if (!ac || ac->container) return 0;
            if (ac->owner) owner = ac->owner;
            is_write = 0;
            break;
        }
        key = shape_key;
        is_write = kind == K_METHOD_WRITE || kind == K_METHOD_ATOMIC_WRITE;
        atomic = kind == K_METHOD_ATOMIC_READ || kind == K_METHOD_ATOMIC_WRITE;
        break;
    case K_ITER:
        if (!exact_container(Py_TYPE(obj))) return 0;
        key = shape_key;
        break;
    case K_CONTAINS: {
        int ck = exact_container(Py_TYPE(obj));
        if (!ck) return 0;
        if (ck != C_DICT) key = shape_key;
        break;
    }
    case K_EQ:   /* nothing to record unless an operand is a container (or a dict view) */
        return !maybe_container(obj) && !maybe_container(key);
    default: return 0;
    }
    return same_epoch_at(owner, key, is_write, atomic, hint);
}

static PyObject *fast_read(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "read(obj, key, site)"); return NULL; }
    uint32_t hint = 0;
    if (same_epoch(args[0], args[1], site_of(args[2]), 0, &hint)) Py_RETURN_NONE;
    return probe(args[0], args[1], args[2], 0);
}

static PyObject *fast_write(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "write(obj, key, site)"); return NULL; }
    uint32_t hint = 0;
    if (same_epoch(args[0], args[1], site_of(args[2]), 1, &hint)) Py_RETURN_NONE;
    return probe(args[0], args[1], args[2], 1);
}

/* ---- token probes ------------------------------------------------------------------------- */

/* The constant of a token probe site (rewriter/instrument.py). Instrumented code reaches the
 * runtime through the token's C slots straight from the eval loop, without the call sequence
 * a probe function costs (half of it, measured): `obj in token` is an access of obj's
 * location token->key (attributes, cells, super, iteration), `~token` of the running code's
 * global token->key, and `token[key] = obj` of obj with a key from the stack (items,
 * operators). */
typedef struct {
    PyObject_HEAD
    PyObject *site_obj;   /* the site id as read()/write() take it */
    PyObject *key;        /* the name accessed, or None for keyed and iteration probes */
    long site;
    uint8_t is_write;
    uint8_t line_mode;    /* a merged probe's counting mode (see count_line) */
    uint32_t hint;        /* where the key's cell was last found (see same_epoch_at) */
    uint64_t *counter;    /* a merged probe's line counter, NULL until known */
    PyObject *hit;        /* a merged probe's hit token, or NULL for an access alone */
} Token;

static int tokens_enabled = 1;   /* 0 once racewatch stops: tokens record nothing */

/* Everything past the fast path: kept out of line so the slots stay small. */
static Py_NO_INLINE int token_slow(Token *t, PyObject *obj, PyObject *key) {
    if (!tokens_enabled) return 0;
    PyObject *r = probe(obj, key, t->site_obj, t->is_write);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

/* Generic tokens (every kind but the three below): `obj in token`, `token[key] = obj`. */
static int token_contains(Token *t, PyObject *obj) {
    if (tokens_enabled && same_epoch(obj, t->key, t->site, t->is_write, &t->hint)) return 0;
    return token_slow(t, obj, t->key);
}

static int token_setitem(Token *t, PyObject *key, PyObject *obj) {
    if (!obj) obj = Py_None;
    if (tokens_enabled && same_epoch(obj, key, t->site, t->is_write, &t->hint)) return 0;
    return token_slow(t, obj, key);
}

/* Attribute tokens: `obj in token` for obj.key. */
static int attr_contains(Token *t, PyObject *obj) {
    if (tokens_enabled) {
        PyObject *owner = fast_attr_owner(obj, t->key, t->is_write);
        if (owner && same_epoch_at(owner, t->key, t->is_write, 0, &t->hint)) return 0;
    }
    return token_slow(t, obj, t->key);
}

/* Closure cell tokens: `cell in token`. */
static int cell_contains(Token *t, PyObject *cell) {
    if (tokens_enabled && same_epoch_at(cell, t->key, t->is_write, 0, &t->hint)) return 0;
    return token_slow(t, cell, t->key);
}

/* Global tokens: `~token` for the running code's global key. */
static PyObject *global_invert(Token *t) {
    if (tokens_enabled) {
        PyObject *globals = PyEval_GetGlobals();
        if (globals && same_epoch_at(globals, t->key, t->is_write, 0, &t->hint))
            Py_RETURN_NONE;
    }
    if (token_slow(t, Py_None, t->key) < 0) return NULL;
    Py_RETURN_NONE;
}

static void token_dealloc(Token *t) {
    Py_XDECREF(t->site_obj);
    Py_XDECREF(t->key);
    Py_XDECREF(t->hit);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *token_repr(Token *t) {
    return PyUnicode_FromFormat("<racewatch probe %ld>", t->site);
}

/* A site id means nothing in another process: a pickled token comes back as one that
 * records nothing (racewatch.runtime.null.Token). */
static PyObject *token_reduce(PyObject *t, PyObject *noargs) {
    PyObject *null = PyImport_ImportModule("racewatch.runtime.null");
    if (!null) return NULL;
    PyObject *cls = PyObject_GetAttrString(null, "Token");
    Py_DECREF(null);
    if (!cls) return NULL;
    return Py_BuildValue("(N())", cls);
}

static PyMethodDef token_methods[] = {
    {"__reduce__", token_reduce, METH_NOARGS, NULL},
    {NULL},
};

/* Comparison tokens: `token[right] = left` for `left OP right`; nothing to record unless an
 * operand is a container. */
static int eq_setitem(Token *t, PyObject *key, PyObject *obj) {
    if (!obj) obj = Py_None;
    if (!tokens_enabled || (!maybe_container(obj) && !maybe_container(key))) return 0;
    return token_slow(t, obj, key);
}

/* One type per fast path, all with the Token layout: the slot a probe runs is its kind's. */
#define TOKEN_TYPE(var, name, number, sequence, mapping)                                     \
    static PyTypeObject var = {                                                               \
        PyVarObject_HEAD_INIT(NULL, 0)                                                        \
        .tp_name = "racewatch.runtime._fast." name,                                          \
        .tp_basicsize = sizeof(Token),                                                        \
        .tp_dealloc = (destructor)token_dealloc,                                              \
        .tp_repr = (reprfunc)token_repr,                                                      \
        .tp_as_number = number,                                                               \
        .tp_as_sequence = sequence,                                                           \
        .tp_as_mapping = mapping,                                                             \
        .tp_flags = Py_TPFLAGS_DEFAULT,                                                       \
        .tp_doc = "The constant of one token probe site: operations on it are accesses.",    \
        .tp_methods = token_methods,                                                          \
    };

/* Every type has every form (a site of an unregistered kind gets the generic type whatever
 * its form); each specialised type overrides its own kind's. */
static PyObject *token_invert(Token *t) {
    if (token_setitem(t, t->key, Py_None) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyNumberMethods token_number = {.nb_invert = (unaryfunc)token_invert};
static PySequenceMethods token_sequence = {.sq_contains = (objobjproc)token_contains};
static PyMappingMethods token_mapping = {.mp_ass_subscript = (objobjargproc)token_setitem};
static PySequenceMethods attr_sequence = {.sq_contains = (objobjproc)attr_contains};
static PySequenceMethods cell_sequence = {.sq_contains = (objobjproc)cell_contains};
static PyNumberMethods global_number = {.nb_invert = (unaryfunc)global_invert};
static PyMappingMethods eq_mapping = {.mp_ass_subscript = (objobjargproc)eq_setitem};

TOKEN_TYPE(TokenType, "Token", &token_number, &token_sequence, &token_mapping)
TOKEN_TYPE(AttrTokenType, "AttrToken", &token_number, &attr_sequence, &token_mapping)
TOKEN_TYPE(CellTokenType, "CellToken", &token_number, &cell_sequence, &token_mapping)
TOKEN_TYPE(GlobalTokenType, "GlobalToken", &global_number, &token_sequence, &token_mapping)
TOKEN_TYPE(EqTokenType, "EqToken", &token_number, &token_sequence, &eq_mapping)

/* Merged probes (rewriter/merge.py): a token that also counts the run of its line, in place of
 * the line's own probe, when nothing between the line's start and the access can raise or jump.
 * The line is counted first, whether or not race detection is on, as sys.settrace would have
 * seen it before the access. Types of their own, so that tokens of accesses alone do not test
 * for a line on every run. */
static const RwCountersApi *counters_api;   /* NULL without the C counters */

/* Look up the counter of the token's line, if the C counters have one by now. */
static void find_line_counter(Token *t) {
    if (!counters_api) return;
    int mode;
    uint64_t *counter = counters_api->counter_of(t->hit, &mode);
    if (counter) {
        t->line_mode = (uint8_t)mode;
        __atomic_store_n(&t->counter, counter, __ATOMIC_RELEASE);
    }
}

/* The counter is not known yet (or the hit token is not a C one): ~hit counts, and the
 * counter is looked up again for the next run. */
static Py_NO_INLINE int count_line_slow(Token *t) {
    PyObject *r = PyNumber_Invert(t->hit);
    if (!r) return -1;
    Py_DECREF(r);
    find_line_counter(t);
    return 0;
}

static inline int count_line(Token *t) {
    uint64_t *counter = __atomic_load_n(&t->counter, __ATOMIC_ACQUIRE);
    if (!counter) return count_line_slow(t);
    if (*counters_api->enabled) rw_bump(counter, t->line_mode);
    return 0;
}

#define COUNTING_INT_SLOT(name, slot, ...)                                                    \
    static int name(Token *t, __VA_ARGS__) {                                                 \
        return count_line(t) < 0 ? -1 : slot;                                                \
    }
#define COUNTING_INVERT_SLOT(name, slot)                                                      \
    static PyObject *name(Token *t) {                                                         \
        return count_line(t) < 0 ? NULL : slot(t);                                            \
    }

COUNTING_INT_SLOT(line_token_contains, token_contains(t, obj), PyObject *obj)
COUNTING_INT_SLOT(line_token_setitem, token_setitem(t, key, obj), PyObject *key, PyObject *obj)
COUNTING_INT_SLOT(line_attr_contains, attr_contains(t, obj), PyObject *obj)
COUNTING_INT_SLOT(line_cell_contains, cell_contains(t, obj), PyObject *obj)
COUNTING_INT_SLOT(line_eq_setitem, eq_setitem(t, key, obj), PyObject *key, PyObject *obj)
COUNTING_INVERT_SLOT(line_token_invert, token_invert)
COUNTING_INVERT_SLOT(line_global_invert, global_invert)

static PyNumberMethods line_token_number = {.nb_invert = (unaryfunc)line_token_invert};
static PySequenceMethods line_token_sequence = {.sq_contains = (objobjproc)line_token_contains};
static PyMappingMethods line_token_mapping = {
    .mp_ass_subscript = (objobjargproc)line_token_setitem};
static PySequenceMethods line_attr_sequence = {.sq_contains = (objobjproc)line_attr_contains};
static PySequenceMethods line_cell_sequence = {.sq_contains = (objobjproc)line_cell_contains};
static PyNumberMethods line_global_number = {.nb_invert = (unaryfunc)line_global_invert};
static PyMappingMethods line_eq_mapping = {.mp_ass_subscript = (objobjargproc)line_eq_setitem};

TOKEN_TYPE(LineTokenType, "LineToken", &line_token_number, &line_token_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineAttrTokenType, "LineAttrToken", &line_token_number, &line_attr_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineCellTokenType, "LineCellToken", &line_token_number, &line_cell_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineGlobalTokenType, "LineGlobalToken", &line_global_number, &line_token_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineEqTokenType, "LineEqToken", &line_token_number, &line_token_sequence,
           &line_eq_mapping)

/* Token types by fast path (generic, attribute, cell, global, comparison), for accesses alone
 * and for merged probes. */
static PyTypeObject *const access_token_types[] = {
    &TokenType, &AttrTokenType, &CellTokenType, &GlobalTokenType, &EqTokenType};
static PyTypeObject *const line_token_types[] = {
    &LineTokenType, &LineAttrTokenType, &LineCellTokenType, &LineGlobalTokenType,
    &LineEqTokenType};
#define N_TOKEN_TYPES (sizeof(access_token_types) / sizeof(access_token_types[0]))

/* The counters' capsule, imported once: without it every merged probe takes the slow path. */
static void find_counters_api(void) {
    static int tried;
    if (tried) return;
    tried = 1;
    counters_api = PyCapsule_Import(RW_COUNTERS_CAPSULE, 0);
    if (!counters_api) PyErr_Clear();
}

static PyObject *fast_token(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 4 || !PyLong_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "token(site, is_write, key, hit=None)");
        return NULL;
    }
    int is_write = PyObject_IsTrue(args[1]);
    if (is_write < 0) return NULL;
    PyObject *hit = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    long site = site_of(args[0]);
    uint8_t kind = site >= 0 && (size_t)site < nsite_kinds ? site_kinds[site] : K_NONE;
    int path = kind == K_ATTR ? 1 : kind == K_CELL ? 2 : kind == K_GLOBAL ? 3 :
               kind == K_EQ ? 4 : 0;   /* the order of the token type tables */
    if (hit) find_counters_api();
    Token *t = PyObject_New(Token, (hit ? line_token_types : access_token_types)[path]);
    if (!t) return NULL;
    t->site_obj = Py_NewRef(args[0]);
    t->key = Py_NewRef(args[2]);
    t->site = site;
    t->is_write = (uint8_t)is_write;
    t->hint = 0;
    t->hit = Py_XNewRef(hit);
    t->counter = NULL;
    t->line_mode = 0;
    if (hit) find_line_counter(t);
    return (PyObject *)t;
}

static PyObject *fast_enable(PyObject *m, PyObject *flag) {
    int on = PyObject_IsTrue(flag);
    if (on < 0) return NULL;
    tokens_enabled = on;
    Py_RETURN_NONE;
}

/* A call site: if the callee is a builtin accessor, the access it makes. Callees are told
 * apart by identity (hashing them could run user code). */
static PyObject *fast_call(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) { PyErr_SetString(PyExc_TypeError, "call(func, a0, a1, site)"); return NULL; }
    if (!current()) return NULL;   /* the thread exists from its first event, as in the twin */
    for (int i = 0; i < naccessors; i++) {
        if (accessors[i].func != args[0]) continue;
        if (accessors[i].shape) {
            PyObject *owner = shape_owner(args[1]);
            if (!owner) Py_RETURN_NONE;
            return probe(owner, shape_key, args[3], 0);   /* unregistered-kind semantics */
        }
        if (!PyUnicode_Check(args[2])) Py_RETURN_NONE;
        PyObject *owner = attr_owner(args[1], args[2]);
        if (!owner) return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        return probe(owner, args[2], args[3], accessors[i].is_write);
    }
    Py_RETURN_NONE;
}

/* ---- synchronization ---------------------------------------------------------------------- */

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

static PyObject *lock_order;   /* callable(tid, held, held_sites, lock, site), or NULL: off */

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

static PyObject *fast_acquire(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "acquire(sync, site)"); return NULL; }
    return sync_event(args[0], 1, 1, (uint32_t)site_of(args[1]));
}

static PyObject *fast_release(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "release(sync, site)"); return NULL; }
    return sync_event(args[0], 0, 1, (uint32_t)site_of(args[1]));
}

static PyObject *fast_happens_after(PyObject *m, PyObject *obj) { return sync_event(obj, 1, 0, 0); }
static PyObject *fast_happens_before(PyObject *m, PyObject *obj) { return sync_event(obj, 0, 0, 0); }

static PyObject *fast_thread_end(PyObject *m, PyObject *obj) { return sync_event(obj, 0, 0, 0); }

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


/* ---- control (not hot) -------------------------------------------------------------------- */

static PyObject *fast_configure(PyObject *m, PyObject *args, PyObject *kw) {
    static char *names[] = {"on_race", "history_full", "ignored_types", "proxy_types",
                            "shape", "accessors", "deque_type",
                            "defaultdict_type", "lock_order", NULL};
    PyObject *race = Py_None, *ignored = NULL, *proxies = NULL, *shape = NULL;
    PyObject *table = NULL, *deque = NULL, *ddict = NULL, *order = Py_None;
    int full = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OpOOOOOOO", names, &race, &full, &ignored,
                                     &proxies, &shape, &table, &deque, &ddict, &order))
        return NULL;
    Py_XSETREF(on_race, race == Py_None ? NULL : Py_NewRef(race));
    Py_XSETREF(lock_order, order == Py_None ? NULL : Py_NewRef(order));
    history_full = full;
    PyObject *tuple = ignored ? PySequence_Tuple(ignored) : PyTuple_New(0);
    if (!tuple) return NULL;
    Py_XSETREF(ignored_types, tuple);
    PyObject *dict = proxies && proxies != Py_None ? PyDict_Copy(proxies) : PyDict_New();
    if (!dict) return NULL;
    Py_XSETREF(proxy_types, dict);
    /* the lock types, for the pointer test sync() makes before anything else */
    nproxied = 0;
    Py_ssize_t pos = 0;
    PyObject *tp, *how;
    while (PyDict_Next(dict, &pos, &tp, &how) && nproxied < MAX_PROXIED)
        if (PyType_Check(tp)) proxied[nproxied++] = (PyTypeObject *)tp;
    if (shape) Py_XSETREF(shape_key, Py_NewRef(shape));
    if (deque && PyType_Check(deque)) {
        deque_type = (PyTypeObject *)Py_NewRef(deque);
        hook_dealloc(deque_type);
    }
    if (ddict && PyType_Check(ddict)) {
        defaultdict_type = (PyTypeObject *)Py_NewRef(ddict);
        hook_dealloc(defaultdict_type);
    }
    if (table && PyDict_Check(table)) {   /* {builtin: (is_write, how)}: how is "shape"/"attr" */
        Py_ssize_t pos = 0;
        PyObject *func, *spec;
        naccessors = 0;
        while (PyDict_Next(table, &pos, &func, &spec) && naccessors < MAX_ACCESSORS) {
            PyObject *how = PyTuple_GetItem(spec, 1);
            if (!how) return NULL;
            accessors[naccessors].func = Py_NewRef(func);
            accessors[naccessors].is_write = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 0));
            accessors[naccessors].shape = PyUnicode_CompareWithASCIIString(how, "shape") == 0;
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

static PyObject *fast_sync_name(PyObject *m, PyObject *id) {
    Py_ssize_t i = PyLong_AsSsize_t(id);
    if (i <= 0 || i >= PyList_GET_SIZE(sync_names)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *name = PyList_GET_ITEM(sync_names, i);
    Py_INCREF(name);
    return name;
}

static size_t take_all(Map *m, Tracked **into) {
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) into[n++] = m->slots[i].value;
    map_clear(m);
    return n;
}

/* In a fork child only the forking thread survives: start over with it as thread 0. */
static PyObject *fast_reset_after_fork(PyObject *m, PyObject *noargs) {
    for (uint32_t i = 0; i < nthreads; i++) {
        PyMem_RawFree(all_threads[i]->vc.c);
        PyMem_RawFree(all_threads[i]->held_id);
        PyMem_RawFree(all_threads[i]->held_count);
        PyMem_RawFree(all_threads[i]->held_site);
        if (all_threads[i]->order_seen) {
            PyMem_RawFree(((Map *)all_threads[i]->order_seen)->slots);
            PyMem_RawFree(all_threads[i]->order_seen);
        }
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

/* For the Python twin: hear about the death of an object that cannot be weakly referenced. */
static PyObject *fast_watch_death(PyObject *m, PyObject *obj) {
    if (!dies_through_hook(Py_TYPE(obj))) Py_RETURN_FALSE;
    if (map_put(&death_watch, (uintptr_t)obj, obj) < 0) return NULL;
    death_note((uintptr_t)obj);
    Py_RETURN_TRUE;
}

static PyObject *fast_deaths(PyObject *m, PyObject *noargs) {
    if (!PyList_GET_SIZE(deaths)) Py_RETURN_NONE;
    PyObject *drained = deaths;
    deaths = PyList_New(0);
    if (!deaths) { deaths = drained; return NULL; }
    return drained;
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
    FAST(acquire, "acquire(sync, site): a lock was acquired."),
    FAST(release, "release(sync, site): a lock is about to be released."),
    FAST(sync, "sync(obj, site): obj, or a proxy recording its acquire/release if a lock."),
    FAST(token, "token(site, is_write, key, hit=None): the constant of a token probe site; "
         "with a hit token, it also counts the run of its line (a merged probe)."),
    {"enable", fast_enable, METH_O, "enable(flag): token probes record (True) or not."},
    {"happens_before", fast_happens_before, METH_O, "Release-like edge on obj."},
    {"happens_after", fast_happens_after, METH_O, "Acquire-like edge on obj."},
    {"thread_end", fast_thread_end, METH_O, "The calling thread ends; obj is its Thread."},
    {"configure", (PyCFunction)(void (*)(void))fast_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(on_race, history_full, ignored_types, proxy_types, shape, "
     "accessors, deque_type, defaultdict_type, lock_order)."},
    {"register_sites", fast_register_sites, METH_VARARGS, "register_sites(base, kinds)."},
    {"current_tid", fast_current_tid, METH_NOARGS, "The calling thread's id (0: main)."},
    {"races", fast_races, METH_NOARGS, "{(site, site): count} of racing site pairs."},
    {"sync_name", fast_sync_name, METH_O, "(type, address) of lock M<id>, or None."},
    {"reset_after_fork", fast_reset_after_fork, METH_NOARGS, "Start over in a fork child."},
    {"stats", fast_stats, METH_NOARGS, "Sizes of the runtime's tables."},
    {"watch_death", fast_watch_death, METH_O,
     "Note obj's death (for objects that cannot be weakly referenced); False if not possible."},
    {"referent", fast_referent, METH_O, "What a weakref.proxy stands for, or None."},
    {"deaths", fast_deaths, METH_NOARGS, "ids of watched objects that died since (or None)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "racewatch.runtime._fast",
    "THE hot path in C: FastTrack over the probes' events.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__fast(void) {
    RefType.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&RefType) < 0 || PyType_Ready(&SyncProxyType) < 0) return NULL;
    for (size_t i = 0; i < N_TOKEN_TYPES; i++)
        if (PyType_Ready(access_token_types[i]) < 0 || PyType_Ready(line_token_types[i]) < 0)
            return NULL;
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
    shape_key = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);   /* until configured */
    deaths = PyList_New(0);
    /* a throwaway class tells which deallocator heap types use */
    PyObject *probe_class = PyObject_CallFunction((PyObject *)&PyType_Type, "s()N",
                                                  "_racewatch_probe", PyDict_New());
    if (!probe_class) { Py_DECREF(m); return NULL; }
    subtype_dealloc_fn = ((PyTypeObject *)probe_class)->tp_dealloc;
    Py_DECREF(probe_class);
    hook_dealloc(&PyBaseObject_Type);
    hook_dealloc(&PyDict_Type);
    hook_dealloc(&PyList_Type);
    hook_dealloc(&PySet_Type);
    hook_dealloc(&PyByteArray_Type);
    hook_dealloc(&PyCell_Type);
    getitem_name = PyUnicode_InternFromString("__getitem__");
    dict_getitem = getitem_name ? _PyType_Lookup(&PyDict_Type, getitem_name) : NULL;
    list_getitem = getitem_name ? _PyType_Lookup(&PyList_Type, getitem_name) : NULL;
    Py_XINCREF(dict_getitem);
    Py_XINCREF(list_getitem);
    if (!deaths || !shape_key || !dict_getitem || !list_getitem || !died_callback || !weakrefable_no || !lockset_ids || !lockset_list || !stack_ids ||
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
