/* Accesses: FastTrack's check of one access against its location's last accesses, and the
 * probes that lead there (a lock-free same-epoch fast path first, the full check after). */
#include "fast.h"

/* FastTrack's same-epoch rule: this thread already did such an access in this epoch (plain
 * covers atomic): 1, nothing to do; 2, the same access from another site, which becomes the
 * latest (a report names the line whose value the other thread may see). On a location known
 * to race, only at the same site: a second site racing with the same access is a pair of its
 * own to report. */
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
           !(locks && prev->extra && prev->extra < nextra &&
             locksets_overlap(extra_lockset[prev->extra], locks));
}

/* FastTrack's same-epoch test on a cell's state (see seen). */
static int same_as_last(const CellState *s, uintptr_t key, ThreadState *t, uint64_t now,
                        int atomic, uint32_t site, int is_write) {
    int raced = (key & TAG_RACED) != 0;
    if (is_write) return seen(s->w, s->c.w_site, now, atomic, site, raced);
    if (s->r != SHARED_READS) return seen(s->r, s->c.r.one.site, now, atomic, site, raced);
    Shared *sh = s->c.r.shared;
    return t->tid < sh->n ? seen(sh->a[t->tid].epoch, sh->a[t->tid].site, now, atomic, site,
                                 raced) : NOT_SEEN;
}

/* The same access again from another site: it becomes the one the cell remembers. */
static void move_to(CellState *s, ThreadState *t, uint32_t site, uint32_t extra,
                    int is_write) {
    if (is_write) {
        s->c.w_site = site;
        s->c.w_extra = extra;
    } else if (s->r == SHARED_READS) {
        s->c.r.shared->a[t->tid].site = site;
        s->c.r.shared->a[t->tid].extra = extra;
    } else {
        s->c.r.one.site = site;
        s->c.r.one.extra = extra;
    }
}

static PyObject *access_location(PyObject *target, PyObject *key, ThreadState *t, long site,
                                 int is_write, int atomic) {
    Py_hash_t hash;
    uint8_t safe;
    if (key_info(key, &hash, &safe) < 0) return NULL;
    if (t->locks_dirty && refresh_lockset(t) < 0) return NULL;   /* may run GC */
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
    int same = NOT_SEEN;
    if (i >= 0) {
        cell_load(rec, i, &st);
        same = same_as_last(&st, rec->keys[i], t, now, atomic, (uint32_t)site, is_write);
        if (same == SEEN) Py_RETURN_NONE;
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
            same = same_as_last(&st, rec->keys[i], t, now, atomic, (uint32_t)site, is_write);
            if (same == SEEN) Py_RETURN_NONE;
        }
    }
    if (i >= 0 && same == SEEN_ELSEWHERE) {   /* nothing to check: only the site moves */
        move_to(&st, t, (uint32_t)site, extra, is_write);
        if (cell_store(target, &rec, (uint32_t)i, &st) < 0) return NULL;
        Py_RETURN_NONE;
    }
    if (i < 0) {
        if ((i = add_cell(target, &rec, key, hash, safe)) < 0) return NULL;
        cell_load(rec, i, &st);
    }

    /* the record stays put from here to cell_store: nothing below allocates Python objects */
    Found on_stack[FOUND_ON_STACK], *found = on_stack;
    int nfound = 0;
    const VC *vc = &t->vc;
    uint32_t locks = t->lockset;
    Access last_write = {st.w, st.c.w_site, st.c.w_extra};
    Access mine = {now, (uint32_t)site, extra};
    if (conflicts(&last_write, atomic, vc, locks)) found[nfound++] = (Found){last_write, 1};
    if (is_write) {
        if (st.r == SHARED_READS) {
            Shared *sh = st.c.r.shared;
            if (sh->n + 1 > FOUND_ON_STACK) {
                found = PyMem_RawMalloc((sh->n + 1) * sizeof(Found));
                if (!found) return PyErr_NoMemory();
                found[0] = on_stack[0];
            }
            for (uint32_t k = 0; k < sh->n; k++)
                if (conflicts(&sh->a[k], atomic, vc, locks))
                    found[nfound++] = (Found){sh->a[k], 0};
            PyMem_RawFree(sh);
        } else {
            Access last_read = {st.r, st.c.r.one.site, st.c.r.one.extra};
            if (conflicts(&last_read, atomic, vc, locks)) found[nfound++] = (Found){last_read, 0};
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

/* The accesses in `ls` (`resolved` < 0: gathering them failed) at `site`; releases them. */
static PyObject *access_all(Locs *ls, int resolved, ThreadState *t, long site) {
    int ok = resolved >= 0;
    for (int i = 0; ok && i < ls->n; i++) {
        Loc *l = &ls->a[i];
        PyObject *r = access_location(l->owner, l->key, t, site, l->is_write, l->atomic);
        if (!r) ok = 0; else Py_DECREF(r);
    }
    locs_clear(ls);
    return ok ? Py_NewRef(Py_None) : NULL;
}

PyObject *probe(PyObject *obj, PyObject *key, PyObject *site_obj, int is_write) {
    long site = site_of(site_obj);
    uint8_t kind = (size_t)site < nsite_kinds ? site_kinds[site] : K_NONE;
    if (nstrong && strong_since_sweep >= SWEEP_EVERY) sweep();
    ThreadState *t = current();
    if (!t) return NULL;
    Locs ls;
    locs_init(&ls);
    return access_all(&ls, resolve(obj, key, kind, is_write, &ls), t, site);
}

/* The record of `owner` if it has one, through a one-entry cache (consecutive accesses are
 * mostly to one object: self.a, self.b ...). map_del clears it whenever a record leaves a
 * table. */
uintptr_t last_addr;
static void *last_record;

static inline Record *record_of(PyObject *owner) {
    if ((uintptr_t)owner == last_addr) return last_record;
    Record *rec = map_get(&objects, (uintptr_t)owner);
    if (rec) {
        last_addr = (uintptr_t)owner;
        last_record = rec;
    }
    return rec;
}

/* FastTrack's same-epoch test: whether this thread's last access of this kind to the
 * location (owner, key) is the current epoch, so nothing is left to do. The same access from
 * another `site` moves the cell's site there (the latest site is the one a report names),
 * here when that needs no stack. `hint` is where the caller last found the key's cell:
 * instances of one class keep their attributes' cells in the same order, so a site's hint is
 * nearly always right and saves the search. */
HOT int same_epoch_at(PyObject *owner, PyObject *key, int is_write, int atomic, uint32_t site,
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
    if (rec->head.compact) {
        Marks *m = &MARKS(rec)[i];
        uint32_t *mark = is_write ? &m->w : &m->r;
        uint32_t want = (site + 1) | (atomic ? ATOMIC_MARK : 0);
        if (!*mark || rec->epoch0 != t->epoch) return 0;
        if (*mark == want) return 1;
        if ((*mark ^ want) & ATOMIC_MARK) return atomic;   /* plain covers atomic */
        /* the site moves here only when the access is the same in all but its site */
        if (history_full || site >= ATOMIC_MARK - 1 || t->locks_dirty || rec->extra0 != t->extra)
            return 0;
        *mark = want;
        return 1;
    }
    uint64_t now = t->epoch | (uint64_t)atomic;
    uint64_t last;
    uint32_t *last_site, last_extra;
    if (is_write) {
        last = EPOCHS(rec)[i].w;
        last_site = &COLD(rec)[i].w_site;
        last_extra = COLD(rec)[i].w_extra;
    } else {
        last = EPOCHS(rec)[i].r;
        last_site = &COLD(rec)[i].r.one.site;
        last_extra = COLD(rec)[i].r.one.extra;
        if (last == SHARED_READS) {
            Shared *sh = COLD(rec)[i].r.shared;
            if (t->tid >= sh->n) return 0;
            last = sh->a[t->tid].epoch;
            last_site = &sh->a[t->tid].site;
            last_extra = sh->a[t->tid].extra;
        }
    }
    if (last == now) {
        if (*last_site != site) {
            if (history_full || t->locks_dirty || last_extra != t->extra) return 0;
            *last_site = site;
        }
        return 1;
    }
    return atomic && (last | 1) == now;
}

/* The fast path for every probe kind: attributes of instances of classes written in Python,
 * globals, closure cells, and the probes on exact builtin containers whose location needs no
 * allocation. True when nothing is left to do; anything else, new or uncertain, goes the
 * whole way through `probe`. It allocates nothing and takes no references, so no code can
 * run in the middle of it. (Token probes of the commonest kinds have their own copies.) */
int same_epoch(PyObject *obj, PyObject *key, long site, int is_write,
                             uint32_t *hint) {
    if (site < 0 || (size_t)site >= nsite_kinds) return 0;
    PyObject *owner = obj;
    int atomic = 0;
    uint8_t kind = site_kinds[site];
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
    case K_EQ:   /* nothing to record unless an operand is a container (or a dict view) */
        return !maybe_container(obj) && !maybe_container(key);
    default: return 0;
    }
    return same_epoch_at(owner, key, is_write, atomic, (uint32_t)site, hint);
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
    for (int i = 0; i < naccessors; i++) {
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
