/* Accesses: FastTrack's check of one access against its location's last accesses, and the
 * probes that lead there (a lock-free same-epoch fast path first, the full check after). */
#include "fast.h"

/* FastTrack's same-epoch rule: this thread already did such an access in this epoch (plain
 * covers atomic). On a location known to race, only at the same site: a second site racing
 * with the same access is a pair of its own to report. */
static inline int seen(uint64_t last, uint32_t last_site, uint64_t now, int atomic,
                       uint32_t site, int raced) {
    if (last != now && !(atomic && (last | 1) == now)) return 0;
    return !raced || last_site == site;
}

/* An earlier access races with this one: unordered, not both atomic, and not both made
 * while holding one lock (with an inner lock, holding it is all that orders them). */
static inline int conflicts(const Access *prev, int atomic, const VC *vc, uint32_t locks) {
    return prev->epoch && !(atomic && (prev->epoch & 1)) && !ordered(prev->epoch, vc) &&
           !extra_shares_lock(prev->extra, locks);
}

/* FastTrack's same-epoch test on a cell's state (nothing new to learn from this access). */
static int same_as_last(const CellState *s, uintptr_t key, ThreadState *t, uint64_t now,
                        int atomic, uint32_t site, int is_write) {
    int raced = (key & TAG_RACED) != 0;
    if (is_write) return seen(s->w, s->c.w_site, now, atomic, site, raced);
    if (!IS_SHARED(s->r)) return seen(s->r, s->c.r.one.site, now, atomic, site, raced);
    const Shared *sh = SHARED_OF(s->r);
    return t->tid < sh->n && seen(sh->a[t->tid].epoch, sh->a[t->tid].site, now, atomic, site,
                                  raced);
}

/* The races of this access with the cell's last accesses, into `found` (heap-allocated when
 * more than fit the caller's array), and the cell's new state in `st`. Under the stripe. */
static int update(CellState *st, ThreadState *t, uint64_t now, uint32_t site, uint32_t extra,
                  int is_write, int atomic, Found **found, int *nfound) {
    const VC *vc = &t->vc;
    uint32_t locks = t->lockset;
    Access last_write = {st->w, st->c.w_site, st->c.w_extra};
    Access mine = {now, site, extra};
    if (conflicts(&last_write, atomic, vc, locks)) (*found)[(*nfound)++] = (Found){last_write, 1};
    if (is_write) {
        if (IS_SHARED(st->r)) {
            Shared *sh = SHARED_OF(st->r);
            if (sh->n + 1 > FOUND_ON_STACK) {
                Found *more = PyMem_RawMalloc((sh->n + 1) * sizeof(Found));
                if (!more) { PyErr_NoMemory(); return -1; }
                more[0] = (*found)[0];
                *found = more;
            }
            for (uint32_t k = 0; k < sh->n; k++)
                if (conflicts(&sh->a[k], atomic, vc, locks))
                    (*found)[(*nfound)++] = (Found){sh->a[k], 0};
            readset_release(sh);
        } else {
            Access last_read = {st->r, st->c.r.one.site, st->c.r.one.extra};
            if (conflicts(&last_read, atomic, vc, locks)) (*found)[(*nfound)++] = (Found){last_read, 0};
        }
        st->w = now;
        st->c.w_site = site;
        st->c.w_extra = extra;
        st->r = 0;
        st->c.r.one.site = st->c.r.one.extra = 0;
    } else if (IS_SHARED(st->r)) {   /* sets are shared and never change: another one */
        Shared *sh = SHARED_OF(st->r), *with = readset_with(sh, t->tid, mine);
        if (!with) return -1;
        readset_release(sh);
        st->r = SHARED_R(with);
    } else if (st->r && !ordered(st->r, vc)) {   /* concurrent reads: one per thread from now */
        Access other = {st->r, st->c.r.one.site, st->c.r.one.extra};
        Shared *sh = readset_pair(EPOCH_TID(st->r), other, t->tid, mine);
        if (!sh) return -1;
        st->r = SHARED_R(sh);
        st->c.r.one.site = st->c.r.one.extra = 0;
    } else {
        st->r = now;
        st->c.r.one.site = site;
        st->c.r.one.extra = extra;
    }
    return 0;
}

/* Whether a new cell for `key` would hold it through a weakref (see add_cell). */
static inline int weak_key(PyObject *key, uint8_t safe) {
    return !safe && PyType_SUPPORTS_WEAKREFS(Py_TYPE(key));
}

/* The full check of one access to location (target, key), under target's stripe. What may
 * run code or release an object (making a record, capturing a stack, a weakref to a new key,
 * reporting) runs with the stripe released, and the record is looked up again after it. */
static PyObject *access_location(PyObject *target, PyObject *key, ThreadState *t, long site,
                                 int is_write, int atomic, int release) {
    Py_hash_t hash;
    uint8_t safe;
    if (key_info(key, &hash, &safe) < 0) return NULL;
    if (LOAD(&t->locks_dirty) && refresh_lockset(t) < 0) return NULL;   /* may run GC */
    uint64_t now = t->epoch | atomic;

    Record *rec = table_get(&objects, target);
    if (!rec) {
        Tracked *fresh = tracked_new(target, KIND_RECORD);   /* may run GC */
        if (!fresh) return NULL;
        /* by type only: isinstance() could read obj.__class__ through user code */
        PyObject *ignored = config_ref(&ignored_types);
        for (Py_ssize_t i = 0; ignored && i < PyTuple_GET_SIZE(ignored); i++) {
            PyObject *tp = PyTuple_GET_ITEM(ignored, i);
            if (PyType_Check(tp) && PyType_IsSubtype(Py_TYPE(target), (PyTypeObject *)tp))
                fresh->ignore = 1;
        }
        Py_XDECREF(ignored);
        rec = (Record *)tracked_insert(&objects, target, fresh);
        if (!rec) return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    if (rec->head.ignore) Py_RETURN_NONE;   /* set before the record was published */

    Lock *stripe = stripe_of(target);
    PyObject *weak = NULL;   /* a weakref to `key` made for a new cell, if unused released */
    uint32_t extra = t->extra;
    int i, prepared = 0;
    CellState st;
    LOCK(stripe);
    for (;;) {
        if (!(rec = table_get(&objects, target))) break;   /* cannot happen: target lives */
        i = find_cell(rec, key, hash, safe);
        if (i >= 0) {
            cell_load(rec, i, &st);
            if (same_as_last(&st, rec->keys[i], t, now, atomic, (uint32_t)site, is_write)) {
                PyObject *let_go = NULL;   /* nothing new to record, but the key still goes */
                if (release) release_key(rec, (uint32_t)i, &let_go);
                UNLOCK(stripe);
                Py_XDECREF(weak);
                Py_XDECREF(let_go);
                Py_RETURN_NONE;
            }
        }
        if (prepared || (!history_full && (i >= 0 || !weak_key(key, safe)))) break;
        UNLOCK(stripe);   /* code run from here may make this very access: look again after */
        if (history_full) extra = intern_extra(t->lockset, capture_stack());
        if (i < 0 && weak_key(key, safe) && !(weak = PyWeakref_NewRef(key, NULL)))
            PyErr_Clear();   /* then held strongly */
        prepared = 1;
        LOCK(stripe);
    }
    if (!rec) {
        UNLOCK(stripe);
        Py_XDECREF(weak);
        Py_RETURN_NONE;
    }
    int err = 0;
    PyObject *let_go = NULL;   /* a key a cell held, released with no lock held */
    if (i < 0) {
        if ((i = add_cell(target, &rec, key, hash, safe, &weak)) < 0) err = 1;
        else cell_load(rec, i, &st);
    } else if (rec->keys[i] & TAG_DIGEST) {   /* a deleted key is back: hold it again */
        PyMem_RawFree(untag(rec->keys[i]));
        STORE(&rec->keys[i], (uintptr_t)Py_NewRef(key) | (rec->keys[i] & TAG_RACED));
    }
    Found on_stack[FOUND_ON_STACK], *found = on_stack;
    int nfound = 0;
    if (!err)
        err = update(&st, t, now, (uint32_t)site, extra, is_write, atomic, &found, &nfound) < 0;
    if (!err) {
        if (nfound) STORE(&rec->keys[i], rec->keys[i] | TAG_RACED);
        if (cell_store(target, &rec, (uint32_t)i, &st) < 0) {
            err = 1;
            if (IS_SHARED(st.r)) readset_release(SHARED_OF(st.r));
        } else if (release) {
            release_key(rec, (uint32_t)i, &let_go);
        }
    }
    UNLOCK(stripe);
    Py_XDECREF(weak);
    Py_XDECREF(let_go);
    err = err || (nfound && report_found(target, key, t, (uint32_t)site, is_write, atomic,
                                         found, nfound) < 0);
    if (found != on_stack) PyMem_RawFree(found);
    if (err) return NULL;
    Py_RETURN_NONE;
}

PyObject *probe(PyObject *obj, PyObject *key, PyObject *site_obj, int is_write) {
    if (LOAD(&nstrong) && LOAD(&strong_since_sweep) >= SWEEP_EVERY) sweep();
    ThreadState *t = current();
    if (!t) return NULL;
    ebr_enter(t);
    long site = site_of(site_obj);
    uint8_t kind = site_kind(site);
    Loc locs[MAX_LOCS];
    int n = resolve(obj, key, kind, is_write, site, locs);
    PyObject *result = n < 0 ? NULL : Py_None;
    for (int i = 0; i < n; i++) {
        if (result) {
            PyObject *r = access_location(locs[i].owner, locs[i].key, t, site, locs[i].is_write,
                                          locs[i].atomic, locs[i].release);
            if (!r) result = NULL; else Py_DECREF(r);
        }
    }
    ebr_exit(t);
    for (int i = 0; i < n; i++) {   /* released last: a finalizer may run */
        Py_DECREF(locs[i].key);
        Py_DECREF(locs[i].owner);
    }
    return result ? Py_NewRef(Py_None) : NULL;
}

/* The record of `owner` if it has one. With a GIL, through a one-entry cache (consecutive
 * accesses are mostly to one object: self.a, self.b ...), which map_del clears whenever a
 * record leaves a table; without one, records are looked up each time (a cache shared by
 * threads, or one per thread cleared by all, would cost more than the lookup). */
#ifndef RW_FREE_THREADED
uintptr_t last_addr;
static void *last_record;

static inline Record *record_of(PyObject *owner) {
    if ((uintptr_t)owner == last_addr) return last_record;
    Record *rec = table_get(&objects, owner);
    if (rec) {
        last_addr = (uintptr_t)owner;
        last_record = rec;
    }
    return rec;
}
#else
#define record_of(owner) ((Record *)table_get(&objects, (owner)))
#endif

/* FastTrack's same-epoch test: whether this thread's last access of this kind to the
 * location (owner, key) is the current epoch, so nothing is left to do. `hint` is where the
 * caller last found the key's cell: instances of one class keep their attributes' cells in
 * the same order, so a site's hint is nearly always right and saves the search. Without a
 * GIL, another thread may be changing the record meanwhile: everything is read once,
 * atomically, from memory that stays allocated (ebr_enter), and what this thread finds of its
 * own accesses it wrote itself. A stale copy at worst sends the access the full way. */
static inline Py_ALWAYS_INLINE int same_epoch_in(ThreadState *t, PyObject *owner, PyObject *key,
                                                 int is_write, int atomic, uint32_t *hint) {
    const Record *rec = record_of(owner);
    if (!rec) return 0;
    if (rec->head.ignore) return 1;
    uint32_t i = LOAD(hint);
    if (i >= LOAD_ACQ(&rec->head.ncells) || LOAD(&rec->keys[i]) != (uintptr_t)key) {
        int32_t found = find_hot(rec, key);
        if (found < 0) return 0;
        STORE(hint, i = (uint32_t)found);   /* any thread's hint is as good */
    }
    uint64_t now = t->epoch | (uint64_t)atomic;
    uint64_t last;
    if (rec->head.compact) {
        const Marks *m = &MARKS(rec)[i];
        uint32_t mark = is_write ? LOAD(&m->w) : LOAD(&m->r);
        last = mark ? LOAD(&rec->epoch0) | (mark >> 31) : 0;
    } else {
        last = is_write ? LOAD(&EPOCHS(rec)[i].w) : LOAD_ACQ(&EPOCHS(rec)[i].r);
        if (IS_SHARED(last)) {
            const Shared *sh = SHARED_OF(last);
            if (t->tid >= sh->n) return 0;
            last = sh->a[t->tid].epoch;
        }
    }
    return last == now || (atomic && (last | 1) == now);
}

HOT int same_epoch_at(PyObject *owner, PyObject *key, int is_write, int atomic, uint32_t *hint) {
    ThreadState *t = tls_state;
    if (!t) return 0;
    ebr_enter(t);
    int same = same_epoch_in(t, owner, key, is_write, atomic, hint);
    ebr_exit(t);
    return same;
}

/* The fast path for every probe kind: attributes of instances of classes written in Python,
 * globals, closure cells, and the probes on exact builtin containers whose location needs no
 * allocation. True when nothing is left to do; anything else, new or uncertain, goes the
 * whole way through `probe`. It allocates nothing and takes no references, so no code can
 * run in the middle of it. (Token probes of the commonest kinds have their own copies.) */
static inline int same_epoch_kind(ThreadState *t, PyObject *obj, PyObject *key, long site,
                                  int is_write, uint32_t *hint) {
    PyObject *owner = obj;
    int atomic = 0;
    uint8_t kind = site_kind(site);
    switch (kind) {
    case K_ATTR:
        owner = fast_attr_owner(obj, key, is_write);
        if (owner == NO_LOCATION) return 1;
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
            owner = fast_method_owner(obj, key);
            if (!owner) return 0;
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
    return same_epoch_in(t, owner, key, is_write, atomic, hint);
}

int same_epoch(PyObject *obj, PyObject *key, long site, int is_write, uint32_t *hint) {
    ThreadState *t = tls_state;
    if (!t) return 0;
    ebr_enter(t);
    int same = same_epoch_kind(t, obj, key, site, is_write, hint);
    ebr_exit(t);
    return same;
}

PyObject *fast_read(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "read(obj, key, site)"); return NULL; }
    uint32_t hint = 0;
    if (same_epoch(args[0], args[1], site_of(args[2]), 0, &hint)) Py_RETURN_NONE;
    return probe(args[0], args[1], args[2], 0);
}

PyObject *fast_write(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "write(obj, key, site)"); return NULL; }
    uint32_t hint = 0;
    if (same_epoch(args[0], args[1], site_of(args[2]), 1, &hint)) Py_RETURN_NONE;
    return probe(args[0], args[1], args[2], 1);
}

/* A call site: if the callee is a builtin accessor, the access it makes. Callees are told
 * apart by identity (hashing them could run user code). */
PyObject *call_access(PyObject *func, PyObject *a0, PyObject *a1, PyObject *site_obj) {
    if (!current()) return NULL;   /* the thread exists from its first event, as in the twin */
    for (int i = 0, n = LOAD_ACQ(&naccessors); i < n; i++) {
        if (accessors[i].func != func) continue;
        if (accessors[i].shape) {
            PyObject *owner = shape_owner(a0);
            if (!owner) Py_RETURN_NONE;
            return probe(owner, shape_key, site_obj, 0);   /* unregistered-kind semantics */
        }
        if (!PyUnicode_Check(a1)) Py_RETURN_NONE;
        PyObject *hold = NULL, *owner = attr_owner(a0, a1, &hold);
        PyObject *r = !owner ? (PyErr_Occurred() ? NULL : Py_NewRef(Py_None))
                             : probe(owner, a1, site_obj, accessors[i].is_write);
        Py_XDECREF(hold);
        return r;
    }
    Py_RETURN_NONE;
}

PyObject *fast_call(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) { PyErr_SetString(PyExc_TypeError, "call(func, a0, a1, site)"); return NULL; }
    return call_access(args[0], args[1], args[2], args[3]);
}
