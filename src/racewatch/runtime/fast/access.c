/* Accesses: FastTrack's check of one access against its location's last accesses, and the
 * probes that lead there (a lock-free same-epoch fast path first, the full check after). */
#include "fast.h"

/* FastTrack's same-epoch rule: this thread already did such an access in this epoch (plain
 * covers atomic): SEEN, nothing to do; SEEN_ELSEWHERE, the same access from another site,
 * which becomes the latest (a report names the line whose value the other thread may see).
 * On a location known to race, only at the same site: a second site racing with the same
 * access is a pair of its own to report. */
enum { NOT_SEEN, SEEN, SEEN_ELSEWHERE };

static inline int seen(uint64_t last, uint32_t last_site, uint64_t now, int atomic,
                       uint32_t site, int raced) {
    if (last == now) return last_site == site ? SEEN : raced ? NOT_SEEN : SEEN_ELSEWHERE;
    if (atomic && (last | 1) == now) return !raced || last_site == site ? SEEN : NOT_SEEN;
    return NOT_SEEN;
}

/* An earlier access races with this one: unordered, not both atomic, and not both made
 * while holding one lock (with an inner lock, holding it is all that orders them). */
static inline int conflicts(const Access *prev, int atomic, const VC *vc, uint32_t locks) {
    return prev->epoch && !(atomic && (prev->epoch & 1)) && !ordered(prev->epoch, vc) &&
           !extra_shares_lock(prev->extra, locks);
}

/* FastTrack's same-epoch test on a cell's state (see seen). */
static int same_as_last(const CellState *s, uintptr_t key, ThreadState *t, uint64_t now,
                        int atomic, uint32_t site, int is_write) {
    int raced = (key & TAG_RACED) != 0;
    if (is_write) return seen(s->w, s->c.w_site, now, atomic, site, raced);
    if (!IS_SHARED(s->r)) return seen(s->r, s->c.r.one.site, now, atomic, site, raced);
    const Shared *sh = SHARED_OF(s->r);
    return t->tid < sh->n ? seen(sh->a[t->tid].epoch, sh->a[t->tid].site, now, atomic, site,
                                 raced) : NOT_SEEN;
}

/* The same access again from another site: it becomes the one the cell remembers (a read
 * set, shared and never changed, is replaced by one with this thread's read moved). */
static int move_to(CellState *st, ThreadState *t, uint64_t now, uint32_t site, uint32_t extra,
                   int is_write) {
    if (is_write) {
        st->c.w_site = site;
        st->c.w_extra = extra;
    } else if (IS_SHARED(st->r)) {
        Shared *sh = SHARED_OF(st->r), *with = readset_with(sh, t->tid, (Access){now, site, extra});
        if (!with) return -1;
        readset_release(sh);
        st->r = SHARED_R(with);
    } else {
        st->c.r.one.site = site;
        st->c.r.one.extra = extra;
    }
    return 0;
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
    int i, prepared = 0, same = NOT_SEEN;
    CellState st;
    LOCK(stripe);
    for (;;) {
        if (!(rec = table_get(&objects, target))) break;   /* cannot happen: target lives */
        i = find_cell(rec, key, hash, safe);
        if (i >= 0) {
            cell_load(rec, i, &st);
            same = same_as_last(&st, rec->keys[i], t, now, atomic, (uint32_t)site, is_write);
            if (same == SEEN) {
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
    if (!err && i >= 0 && same == SEEN_ELSEWHERE)   /* nothing to check: only the site moves */
        err = move_to(&st, t, now, (uint32_t)site, extra, is_write) < 0;
    else if (!err)
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

/* The accesses in `ls` (`resolved` < 0: gathering them failed) at `site`; releases them, last
 * (a finalizer may run). Each access is its own stay inside the runtime (ebr_enter): a bulk
 * read of many blocks, waiting on other threads' stripes, must not hold back every thread's
 * reclamation meanwhile. */
static PyObject *access_all(Locs *ls, int resolved, ThreadState *t, long site) {
    int ok = resolved >= 0;
    for (int i = 0; ok && i < ls->n; i++) {
        Loc *l = &ls->a[i];
        for (Py_ssize_t k = 0; ok && k < (l->key ? 1 : l->blocks); k++) {
            PyObject *key = l->key ? Py_NewRef(l->key) : block_key_ref(k);
            ebr_enter(t);
            PyObject *r = key ? access_location(l->owner, key, t, site, l->is_write, l->atomic,
                                                l->release) : NULL;
            ebr_exit(t);
            Py_XDECREF(key);   /* a made block key: an int, no finalizer */
            if (!r) ok = 0; else Py_DECREF(r);
        }
    }
    locs_clear(ls);
    return ok ? Py_NewRef(Py_None) : NULL;
}

PyObject *probe(PyObject *obj, PyObject *key, PyObject *site_obj, int is_write) {
    if (LOAD(&nstrong) && LOAD(&strong_since_sweep) >= SWEEP_EVERY) sweep();
    ThreadState *t = current();
    if (!t) return NULL;
    long site = site_of(site_obj);
    Locs ls;
    locs_init(&ls);
    return access_all(&ls, resolve(obj, key, site_kind(site), is_write, &ls), t, site);
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
 * location (owner, key) is the current epoch, so nothing is left to do. The same access from
 * another `site` moves the cell's site there (the latest site is the one a report names),
 * here when that needs no stack. `hint` is where the caller last found the key's cell:
 * instances of one class keep their attributes' cells in the same order, so a site's hint is
 * nearly always right and saves the search. Without a GIL, another thread may be changing the
 * record meanwhile: everything is read once, atomically, from memory that stays allocated
 * (ebr_enter), and what this thread finds of its own accesses it wrote itself. A stale copy
 * at worst sends the access the full way; a site moves only under the owner's stripe (MOVE:
 * the caller takes it and asks again with `may_move`). */
enum { FAST_NO, FAST_SAME, FAST_MOVE };

static inline Py_ALWAYS_INLINE int same_epoch_in(ThreadState *t, PyObject *owner, PyObject *key,
                                                 int is_write, int atomic, uint32_t site,
                                                 uint32_t *hint, int may_move) {
    Record *rec = record_of(owner);
    if (!rec) return FAST_NO;
    if (rec->head.ignore) return FAST_SAME;
    uint32_t i = LOAD(hint);
    if (i >= LOAD_ACQ(&rec->head.ncells) || LOAD(&rec->keys[i]) != (uintptr_t)key) {
        int32_t found = find_hot(rec, key);
        if (found < 0) return FAST_NO;
        STORE(hint, i = (uint32_t)found);   /* any thread's hint is as good */
    }
    Epochs *full = LOAD_ACQ(&rec->full);
    if (!full) {
        Marks *m = &MARKS(rec)[i];
        uint32_t *markp = is_write ? &m->w : &m->r;
        uint32_t mark = LOAD(markp), want = (site + 1) | (atomic ? ATOMIC_MARK : 0);
        if (!mark || LOAD(&rec->epoch0) != t->epoch) return FAST_NO;
        if (mark == want) return FAST_SAME;
        if ((mark ^ want) & ATOMIC_MARK) return atomic;   /* plain covers atomic */
        /* the site moves here only when the access is the same in all but its site */
        if (history_full || site >= ATOMIC_MARK - 1 || LOAD(&t->locks_dirty) ||
            LOAD(&rec->extra0) != t->extra)
            return FAST_NO;
        if (!may_move) return FAST_MOVE;
        STORE(markp, want);
        return FAST_SAME;
    }
    uint64_t now = t->epoch | (uint64_t)atomic;
    uint64_t last;
    uint32_t *site_p = NULL, last_extra;
    Cold *cold = (Cold *)(full + rec->capcells);
    if (is_write) {
        last = LOAD(&full[i].w);
        site_p = &cold[i].w_site;
        last_extra = LOAD(&cold[i].w_extra);
    } else {
        last = LOAD_ACQ(&full[i].r);
        if (IS_SHARED(last)) {   /* a set never changes: its sites move the full way */
            const Shared *sh = SHARED_OF(last);
            if (t->tid >= sh->n) return FAST_NO;
            last = sh->a[t->tid].epoch;
            if (last == now && sh->a[t->tid].site != site) return FAST_NO;
        } else {
            site_p = &cold[i].r.one.site;
            last_extra = LOAD(&cold[i].r.one.extra);
        }
    }
    if (last == now) {
        if (site_p && LOAD(site_p) != site) {
            if (history_full || LOAD(&t->locks_dirty) || last_extra != t->extra) return FAST_NO;
            if (!may_move) return FAST_MOVE;
            STORE(site_p, site);
        }
        return FAST_SAME;
    }
    return atomic && (last | 1) == now;
}

/* same_epoch_in, moving a site where it has to (see there). */
static inline Py_ALWAYS_INLINE int same_epoch_moving(ThreadState *t, PyObject *owner,
                                                     PyObject *key, int is_write, int atomic,
                                                     uint32_t site, uint32_t *hint) {
#ifdef RW_FREE_THREADED
    int same = same_epoch_in(t, owner, key, is_write, atomic, site, hint, 0);
    if (same != FAST_MOVE) return same;
    Lock *stripe = stripe_of(owner);
    LOCK(stripe);
    same = same_epoch_in(t, owner, key, is_write, atomic, site, hint, 1);
    UNLOCK(stripe);
    return same == FAST_SAME;
#else
    return same_epoch_in(t, owner, key, is_write, atomic, site, hint, 1);
#endif
}

HOT int same_epoch_at(PyObject *owner, PyObject *key, int is_write, int atomic, uint32_t site,
                      uint32_t *hint) {
    ThreadState *t = tls_state;
    if (!t) return 0;
    ebr_enter(t);
    int same = same_epoch_moving(t, owner, key, is_write, atomic, site, hint);
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
    case K_ATTR: return attr_same_epoch(obj, key, is_write, (uint32_t)site, hint);
    case K_GLOBAL: owner = PyEval_GetGlobals(); break;
    case K_CELL: break;
    case K_SUPER:
        owner = super_lookup(obj, key);
        if (!owner) return 0;
        break;
    case K_ITEM:
        /* a list index (small ints are shared objects, so found by address), a dict read */
        if (Py_IS_TYPE(obj, &PyList_Type) && PyLong_CheckExact(key) && site_of(key) >= 0) {
            if (is_write) {   /* and its block */
                PyObject *block = block_key(site_of(key) / BLOCK);
                uint32_t other = 0;
                if (!block || !same_epoch_at(obj, block, 1, 1, (uint32_t)site, &other)) return 0;
            }
            break;
        }
        if (Py_IS_TYPE(obj, &PyDict_Type)) {
            if (!is_write) break;
            /* overwriting a key held by address (not a new one): and the values */
            if (!PyUnicode_CheckExact(key) || PyDict_Contains(obj, key) != 1) return 0;
            uint32_t other = 0;
            if (!same_epoch_at(obj, items_key, 1, 1, (uint32_t)site, &other)) return 0;
            break;
        }
        return 0;
    case K_METHOD_READ: case K_METHOD_WRITE: case K_METHOD_ATOMIC_READ:
    case K_METHOD_ATOMIC_WRITE:
        if (!exact_container(Py_TYPE(obj)))
            /* a method of an object of a class written in Python: an attribute read, unless
             * the class is a container subclass (the cache entry knows) */
            return method_same_epoch(obj, key, (uint32_t)site, hint);
        key = shape_key;
        is_write = kind == K_METHOD_WRITE || kind == K_METHOD_ATOMIC_WRITE;
        atomic = kind == K_METHOD_ATOMIC_READ || kind == K_METHOD_ATOMIC_WRITE;
        break;
    case K_ITER: {   /* the shape, and a list-like's blocks */
        int ck = exact_container(Py_TYPE(obj));
        if (!ck) return 0;
        if (ck != C_DICT && ck != C_SET) {
            Py_ssize_t len = builtin_len(obj);
            uint32_t other = 0;
            for (Py_ssize_t k = 0; k * BLOCK < len; k++) {
                PyObject *block = block_key(k);
                if (!block || !same_epoch_at(obj, block, 0, 0, (uint32_t)site, &other)) return 0;
            }
        }
        key = shape_key;
        break;
    }
    case K_CONCAT:   /* nothing to record unless an operand is a list-like */
        return !maybe_sequence(obj) && !maybe_sequence(key);
    case K_CONTAINS: {
        int ck = exact_container(Py_TYPE(obj));
        if (!ck) return 0;
        if (ck != C_DICT) key = shape_key;
        break;
    }
    case K_EQ:   /* nothing to record unless a container's own comparison runs (eq_reads) */
        return !eq_reads(obj, key);
    default: return 0;
    }
    return same_epoch_moving(t, owner, key, is_write, atomic, (uint32_t)site, hint);
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
        if (accessors[i].how == HOW_SHAPE) {
            PyObject *owner = shape_owner(a0);
            if (!owner) Py_RETURN_NONE;
            return probe(owner, shape_key, site_obj, 0);   /* unregistered-kind semantics */
        }
        if (accessors[i].how == HOW_ATTR && !PyUnicode_CheckExact(a1)) Py_RETURN_NONE;
        ThreadState *t = current();
        if (!t) return NULL;
        Locs ls;
        locs_init(&ls);
        int resolved = accessors[i].how == HOW_ATTR
            ? attr_locs(a0, a1, accessors[i].is_write, &ls)
            : bulk_locs(a0, accessors[i].how == HOW_COPY, &ls);
        return access_all(&ls, resolved, t, site_of(site_obj));
    }
    Py_RETURN_NONE;
}

PyObject *fast_call(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) { PyErr_SetString(PyExc_TypeError, "call(func, a0, a1, site)"); return NULL; }
    return call_access(args[0], args[1], args[2], args[3]);
}
