/* Shadow records: a tracked object's cells (one per location: attribute, key, index) and
 * their state, in the compact or the full layout, found by key. */
#include "fast.h"

static inline uint32_t mark_site(uint32_t mark) {
    return mark ? (mark & ~ATOMIC_MARK) - 1 : 0;
}

void cell_load(const Record *rec, uint32_t i, CellState *s) {
    if (rec->full) {
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

uint32_t first_cells(PyTypeObject *tp) {
    if (!hinted(tp)) return FIRST_CELLS;
    size_t i = hint_slot(tp);
    uint32_t n = LOAD(&size_hints[i].type) == tp ? LOAD(&size_hints[i].cells) : FIRST_CELLS;
    return n < 1 ? 1 : n > 16 ? 16 : n;   /* a class of one attribute: one cell, not two */
}

static void note_cells(PyTypeObject *tp, uint32_t cells) {
    if (!hinted(tp)) return;
    size_t i = hint_slot(tp);
    /* borrowed, and written by any thread: a stale or mixed entry only mis-sizes a record */
    if (LOAD(&size_hints[i].type) != tp || LOAD(&size_hints[i].cells) < cells) {
        STORE(&size_hints[i].type, tp);
        STORE(&size_hints[i].cells, cells);
    }
}

/* Keys compared by value are those whose hashing and comparison cannot run user code. */
int safe_key(PyObject *key, int depth) {
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
HOT Py_hash_t key_hash(PyObject *key, int safe) {
    if (PyUnicode_CheckExact(key) && ((PyASCIIObject *)key)->hash != -1)
        return ((PyASCIIObject *)key)->hash;
    if (!safe) return (Py_hash_t)((uintptr_t)key >> 4);
    Py_hash_t h = PyObject_Hash(key);   /* a builtin scalar: cached or cheap */
    if (h == -1) PyErr_Clear();
    return h;
}

int key_info(PyObject *key, Py_hash_t *hash, uint8_t *safe) {
    *safe = (uint8_t)safe_key(key, 0);
    *hash = key_hash(key, *safe);
    return 0;
}

/* A second hash of a value-compared key, independent of Python's (FNV-1a over its bytes),
 * computed without allocating or running any code; 0 if unknown. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)data)[i]) * 0x100000001b3ull;
    return h;
}

/* Numbers equal in value are one dict key (1, 1.0, True): they share a digest. */
static inline int is_number(PyObject *key) {
    return PyLong_CheckExact(key) || PyBool_Check(key) || PyFloat_CheckExact(key);
}

static uint64_t hash2(PyObject *key, int depth) {
    PyTypeObject *tp = is_number(key) ? &PyLong_Type : Py_TYPE(key);
    uint64_t h = fnv(0xcbf29ce484222325ull, &tp, sizeof(tp));
    if (PyUnicode_CheckExact(key)) {
        int kind = PyUnicode_KIND(key);
        return fnv(h, PyUnicode_DATA(key), (size_t)PyUnicode_GET_LENGTH(key) * kind);
    }
    if (PyBytes_CheckExact(key)) return fnv(h, PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
    if (is_number(key)) {
        /* an integral value as (its int64 or -1, its double), anything else by its double */
        double d = PyFloat_CheckExact(key) ? PyFloat_AS_DOUBLE(key) : PyLong_AsDouble(key);
        long long v = -1;
        if (PyErr_Occurred()) PyErr_Clear();   /* too big for a double: hash and type tell */
        if (!PyFloat_CheckExact(key)) {
            int overflow;
            v = PyLong_AsLongLongAndOverflow(key, &overflow);
            if (overflow) v = -1;
        } else if (d == (double)(long long)d && d >= -9.2e18 && d <= 9.2e18) {
            v = (long long)d;
        } else if (d != d || d - d != 0) {   /* nan, inf: no int equals them */
            v = -2;
        }
        if (v != -1) d = 0.0;   /* a small integral value: its int64 says it all */
        h = fnv(h, &v, sizeof(v));
        return fnv(h, &d, sizeof(d));
    }
    if (PyTuple_CheckExact(key) && depth < 32) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(key); i++) {
            uint64_t item = hash2(PyTuple_GET_ITEM(key, i), depth + 1);
            h = fnv(h, &item, sizeof(item));
        }
    }
    return h;   /* None */
}

static void digest_of(PyObject *key, Digest *d) {
    d->type = is_number(key) ? &PyLong_Type : Py_TYPE(key);
    d->hash = PyObject_Hash(key);   /* value-compared: a builtin scalar's, cached or cheap */
    if (d->hash == -1) PyErr_Clear();
    d->hash2 = hash2(key, 0);
}

static inline const Digest *digest_at(uintptr_t tagged) { return (const Digest *)untag(tagged); }

PyObject *held_key(uintptr_t tagged) { return tagged & TAG_DIGEST ? NULL : untag(tagged); }

/* Cell i's key was deleted from its dict: the cell lets go of it (as the dict did), keeping a
 * digest of a value-compared key (a later access to an equal key is the same location) or,
 * for a key compared by identity, nothing it could match. The reference goes to *released,
 * for the caller to drop with no lock held. Under the stripe. */
void release_key(Record *rec, uint32_t i, PyObject **released) {
    uintptr_t tagged = rec->keys[i];
    if (tagged & (TAG_WEAK | TAG_DIGEST)) return;   /* a weakref keeps nothing alive */
    Digest *d = PyMem_RawMalloc(sizeof(Digest));
    if (!d) return;   /* kept: a key held, never a wrong verdict */
    PyObject *held = untag(tagged);
    if (safe_key(held, 0)) {
        digest_of(held, d);
    } else {
        d->type = NULL;
        d->hash = (Py_hash_t)((uintptr_t)held >> 4);   /* the index's hash stays */
        d->hash2 = 0;
    }
    STORE(&rec->keys[i], (uintptr_t)d | TAG_DIGEST | (tagged & TAG_RACED));
    *released = held;
}

/* Whether weakref `ref` refers to `obj`, read without a reference (taking one could release
 * the last, and run a finalizer, under a lock). A dead referent reads as None. */
static inline int weak_is(PyObject *ref, PyObject *obj) {
    return LOAD(&((PyWeakReference *)ref)->wr_object) == obj;
}

/* What a weakref or weakref.proxy refers to (a new reference), or NULL once it is dead. */
PyObject *weak_target(PyObject *ref) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    if (PyWeakref_GetRef(ref, &obj) <= 0) { PyErr_Clear(); return NULL; }
    return obj;
#else
    PyObject *obj = PyWeakref_GET_OBJECT(ref);
    return obj == Py_None ? NULL : Py_NewRef(obj);
#endif
}

/* The hash a cell is indexed by: its key's value hash if compared by value, else address. */
static Py_hash_t cell_hash(Record *rec, uint32_t i) {
    uintptr_t tagged = rec->keys[i];
    if (tagged & TAG_DIGEST) return digest_at(tagged)->hash;
    PyObject *held = untag(tagged);
    if (tagged & TAG_WEAK) {
        PyObject *target = LOAD(&((PyWeakReference *)held)->wr_object);
        return (Py_hash_t)((uintptr_t)(target != Py_None ? target : held) >> 4);
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
    if (tagged & TAG_DIGEST) {
        const Digest *d = digest_at(tagged);
        if (!safe || !d->type || d->hash != hash) return 0;
        Digest mine;
        digest_of(key, &mine);
        return mine.type == d->type && mine.hash2 == d->hash2;
    }
    PyObject *held = untag(tagged);
    if (tagged & TAG_WEAK) return weak_is(held, key);   /* dead: an address reused */
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

int find_cell(Record *rec, PyObject *key, Py_hash_t hash, uint8_t safe) {
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
    Index *old = rec->index;
    STORE_REL(&rec->index, index);
    retire(old, PyMem_RawFree);
    return 0;
}

/* The bytes of a record with `cap` cells, and of its full state if it has one. */
static inline Py_ssize_t record_bytes(const Record *rec, uint32_t cap) {
    return (Py_ssize_t)(RECORD_SIZE(cap) + (rec->full ? FULL_SIZE(cap) : 0));
}

/* Remake `rec` with room for `cap` cells, in its layout. The record moves: everything that
 * points at it follows. Under obj's stripe, as every change of a record. */
static Record *resize_record(PyObject *obj, Record *rec, uint32_t cap) {
    uint32_t n = rec->head.ncells;
    Record *moved = PyMem_Malloc(RECORD_SIZE(cap));
    Epochs *full = moved && rec->full ? PyMem_Malloc(FULL_SIZE(cap)) : NULL;
    if (!moved || (rec->full && !full)) {
        PyMem_Free(moved);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(moved, rec, sizeof(Record));
    moved->capcells = cap;
    moved->full = full;
    memcpy(moved->keys, rec->keys, n * sizeof(uintptr_t));
    if (full) {
        memcpy(EPOCHS(moved), EPOCHS(rec), n * sizeof(Epochs));
        memcpy(COLD(moved), COLD(rec), n * sizeof(Cold));
    } else {
        memcpy(MARKS(moved), MARKS(rec), n * sizeof(Marks));
    }
    if (table_put(&objects, obj, moved) < 0) {   /* replaces the entry */
        PyMem_Free(full);
        PyMem_Free(moved);
        return NULL;
    }
    account(record_bytes(moved, cap) - record_bytes(rec, rec->capcells));
    if (moved->head.ref && !moved->head.strong) ((Ref *)moved->head.ref)->owner = &moved->head;
#ifndef RW_FREE_THREADED
    last_addr = 0;
#endif
    retire(rec->full, PyMem_Free);   /* a fast path may be reading the old copy */
    retire(rec, PyMem_Free);
    return moved;
}

/* Make room for one more cell. */
static Record *grow_record(PyObject *obj, Record *rec) {
    if (rec->head.ncells < rec->capcells) return rec;
    /* small records (most objects have a handful of attributes) grow a cell at a time */
    uint32_t cap = rec->capcells < 6 ? rec->capcells + 1 : rec->capcells + rec->capcells / 2;
    return resize_record(obj, rec, cap);
}

/* Turn compact `rec` full, in place: its cells' state copied to a full array, published last
 * (a fast path that still sees the compact marks sees this thread's accesses as they were, as
 * in a copy it read before a move). The cells past ncells are filled as they are added. */
static int make_full(Record *rec) {
    Epochs *full = PyMem_Malloc(FULL_SIZE(rec->capcells));
    if (!full) { PyErr_NoMemory(); return -1; }
    Cold *cold = (Cold *)(full + rec->capcells);
    for (uint32_t i = 0; i < rec->head.ncells; i++) {
        CellState st;
        cell_load(rec, i, &st);
        full[i] = (Epochs){st.w, st.r};
        cold[i] = st.c;
    }
    account((Py_ssize_t)FULL_SIZE(rec->capcells));
    STORE_REL(&rec->full, full);
    return 0;
}

static inline uint32_t mark_of(uint64_t epoch, uint32_t site) {
    return epoch ? (site + 1) | (epoch & 1 ? ATOMIC_MARK : 0) : 0;
}

/* Whether state `s` can be kept in compact `rec`: its accesses share the record's epoch and
 * extra (which the first access sets). */
static int fits_compact(Record *rec, const CellState *s) {
    if (IS_SHARED(s->r)) return 0;
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
    STORE(&rec->epoch0, epoch);   /* set once per record: the fast path may read it */
    rec->extra0 = extra;
    return 1;
}

/* Keep `s` as cell i's state; a compact record that cannot hold it turns full (in place). */
int cell_store(PyObject *obj, Record **recp, uint32_t i, const CellState *s) {
    Record *rec = *recp;
    if (!rec->full) {
        if (fits_compact(rec, s)) {
            STORE(&MARKS(rec)[i].w, mark_of(s->w, s->c.w_site));
            STORE(&MARKS(rec)[i].r, mark_of(s->r, s->c.r.one.site));
            return 0;
        }
        if (make_full(rec) < 0) return -1;
    }
    STORE(&EPOCHS(rec)[i].w, s->w);
    STORE_REL(&EPOCHS(rec)[i].r, s->r);   /* a read set is filled before it is published */
#ifdef RW_FREE_THREADED
    /* the fast path compares sites lock-free (it moves them under the stripe) */
    STORE(&COLD(rec)[i].w_site, s->c.w_site);
    STORE(&COLD(rec)[i].w_extra, s->c.w_extra);
    STORE(&COLD(rec)[i].r.one.site, s->c.r.one.site);
    STORE(&COLD(rec)[i].r.one.extra, s->c.r.one.extra);
#else
    COLD(rec)[i] = s->c;
#endif
    return 0;
}

/* Add a cell for `key`; returns its number and sets *recp to the (maybe moved) record. A key
 * compared by identity is held through `*weak` when the caller could make a weakref to it (a
 * cell must not keep a program's object alive: its finalizer, its weakrefs, its refcount
 * would change), which the cell then owns (*weak becomes NULL). The cell is filled before it
 * is counted: a fast path that sees the count sees the key. */
int add_cell(PyObject *obj, Record **recp, PyObject *key, Py_hash_t hash, uint8_t safe,
             PyObject **weak) {
    Record *rec = grow_record(obj, *recp);
    if (!rec) return -1;
    *recp = rec;
    uint32_t i = rec->head.ncells;
    PyObject *held = !safe ? *weak : NULL;
    if (!held) note_cells(Py_TYPE(obj), i + 1);
    if (held) *weak = NULL;
    STORE(&rec->keys[i], held ? (uintptr_t)held | TAG_WEAK : (uintptr_t)Py_NewRef(key));
    if (!rec->full) {
        MARKS(rec)[i] = (Marks){0, 0};
    } else {
        EPOCHS(rec)[i] = (Epochs){0, 0};
        memset(&COLD(rec)[i], 0, sizeof(Cold));
    }
    if (i + 1 > 8 && (!rec->index || (i + 1) * 2 + 2 > rec->index->cap)) {
        STORE_REL(&rec->head.ncells, i + 1);   /* reindex covers every counted cell */
        if (reindex(rec) < 0) return -1;
        return (int)i;
    }
    if (rec->index) {
        uint32_t mask = rec->index->cap - 1, j = (uint32_t)hash & mask;
        while (rec->index->slot[j]) j = (j + 1) & mask;
        STORE_REL(&rec->index->slot[j], i + 1);
    }
    STORE_REL(&rec->head.ncells, i + 1);
    return (int)i;
}

/* The hot cell of `key` in `rec`, or -1: by hash when the record is indexed (the same hash
 * find_cell uses), else by scanning. A tagged key (weak, or raced) never equals a probe's
 * key: those take the full check. */
HOT int32_t find_hot(const Record *rec, PyObject *key) {
    const uintptr_t *keys = rec->keys;
    const Index *index = LOAD_ACQ(&rec->index);
    if (index) {
        Py_hash_t hash = key_hash(key, PyUnicode_CheckExact(key) || safe_key(key, 0));
        if (hash == -1) return -1;
        uint32_t mask = index->cap - 1;
        for (uint32_t j = (uint32_t)hash & mask;; j = (j + 1) & mask) {
            uint32_t slot = LOAD_ACQ(&index->slot[j]);
            if (!slot) return -1;
            if (LOAD(&keys[slot - 1]) == (uintptr_t)key) return (int32_t)slot - 1;
        }
    }
    for (uint32_t i = 0, n = LOAD_ACQ(&rec->head.ncells); i < n; i++)
        if (LOAD(&keys[i]) == (uintptr_t)key) return (int32_t)i;
    return -1;
}
