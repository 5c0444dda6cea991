/* Shadow records: a tracked object's cells (one per location: attribute, key, index) and
 * their state, in the compact or the full layout, found by key. */
#include "fast.h"

static inline uint32_t mark_site(uint32_t mark) {
    return mark ? (mark & ~ATOMIC_MARK) - 1 : 0;
}

void cell_load(const Record *rec, uint32_t i, CellState *s) {
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

/* What a weakref or weakref.proxy refers to (borrowed), or NULL once it is dead. */
PyObject *weak_target(PyObject *ref) {
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
int cell_store(PyObject *obj, Record **recp, uint32_t i, const CellState *s) {
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
int add_cell(PyObject *obj, Record **recp, PyObject *key, Py_hash_t hash,
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

/* The hot cell of `key` in `rec`, or -1: by hash when the record is indexed (the same hash
 * find_cell uses), else by scanning. A tagged key (weak, or raced) never equals a probe's
 * key: those take the full check. */
HOT int32_t find_hot(const Record *rec, PyObject *key) {
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
