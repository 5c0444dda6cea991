/* Locks: their acquire/release edges, which thread holds which lock (locksets), and the
 * lock-order events (the C twin of runtime/held.py and api.py's lock events).
 *
 * Events come from the lock hooks (runtime/_locks.c) through the capsule `lock_sink`, or
 * from Python (lock_acquired/lock_released). A lock is held by the thread that acquired it
 * until that thread releases it; a plain lock released by another thread is a signal: nobody
 * holds it, and its acquirer drops it at its next lock event or access (it is stale), as it
 * does a lock that died while held; and it is a semaphore from then on (runtime/held.py): no
 * part in lock order, and the graph drops it with the cycles through it. The lockset accesses
 * record is interned lazily, at the first access after a change: locks taken and dropped
 * inside library code cost no interning.
 * A lock taken while holding others is shown to the lock-order graph when the same thread
 * releases it, from the held locks still alive then. Inner locks (a modelled primitive's own)
 * order nothing among the primitive's own uses (their releases go to a clock of their own,
 * which only the program's own `with q.mutex:` joins) and take no part in lock order, but
 * are held: accesses made holding one do not race with each other (access.c).
 *
 * A thread's held set is its own. Without a GIL, what other threads share (the maps below,
 * the ids, and a sync var's owner, inner and pinned) is guarded by `locks_lock`, a leaf taken
 * after the lock's stripe; a sync var's clock by its stripe (as in sync.c). Nothing under
 * them runs Python code or releases an object: references to drop are dropped after. */
#include "fast.h"
#include "../_locks_api.h"

static Lock locks_lock;
static Map lock_vars;      /* lock id -> SyncVar, while the lock lives */
static Map lock_names;     /* lock id -> (type, address): while the lock lives, or once pinned */
static uint32_t next_id = 1;
typedef struct { uint32_t *ids, n, cap; } Ids;
static Ids dead;         /* ids of locks that died, for the lock-order graph to forget */
static Ids semaphores;   /* ids of locks that became semaphores: the graph forgets them too */

/* ---- held locks --------------------------------------------------------------------------- */

static void free_pending(PendingOrder *p) {
    if (!p) return;
    for (uint32_t i = 0; i < p->n; i++) Py_XDECREF(p->h[i].code);
    PyMem_RawFree(p);
}

static void clear_held(Held *h) {
    Py_CLEAR(h->code);
    free_pending(h->order);
    h->order = NULL;
}

void free_held(ThreadState *t) {
    for (uint32_t i = 0; i < t->nheld; i++) clear_held(&t->held[i]);
    PyMem_RawFree(t->held);
    t->held = NULL;
    t->nheld = t->capheld = 0;
}

static Held *find_held(ThreadState *t, uint32_t id) {
    for (uint32_t i = 0; i < t->nheld; i++)
        if (t->held[i].id == id) return &t->held[i];
    return NULL;
}

/* Take entry `h` out of the held set (its references go with the caller's copy). */
static Held take_held(ThreadState *t, Held *h) {
    Held out = *h;
    uint32_t i = (uint32_t)(h - t->held);
    memmove(&t->held[i], &t->held[i + 1], (t->nheld - i - 1) * sizeof(Held));
    t->nheld--;
    STORE(&t->locks_dirty, 1);
    return out;
}

static int put_held(ThreadState *t, Held h) {
    if (t->nheld == t->capheld) {
        uint32_t cap = t->capheld ? t->capheld * 2 : 4;
        Held *a = PyMem_RawRealloc(t->held, cap * sizeof(Held));
        if (!a) { PyErr_NoMemory(); return -1; }
        t->held = a;
        t->capheld = cap;
    }
    uint32_t i = 0;
    while (i < t->nheld && t->held[i].id < h.id) i++;
    memmove(&t->held[i + 1], &t->held[i], (t->nheld - i) * sizeof(Held));
    t->held[i] = h;
    t->nheld++;
    STORE(&t->locks_dirty, 1);
    return 0;
}

/* Whether thread `t` still holds lock `id`; under locks_lock. */
static int still_held(ThreadState *t, uint32_t id) {
    SyncVar *var = map_get(&lock_vars, id);
    return var && var->owner == t->tid + 1;
}

/* Drop the locks this thread no longer holds: released by another thread, or dead. May
 * release code objects. */
static void prune(ThreadState *t) {
    STORE(&t->stale, 0);   /* before the look: a signal after it marks the thread again */
    for (uint32_t i = 0; i < t->nheld;) {
        LOCK(&locks_lock);
        int held = still_held(t, t->held[i].id);
        UNLOCK(&locks_lock);
        if (held) { i++; continue; }
        Held gone = take_held(t, &t->held[i]);
        clear_held(&gone);
    }
}

static void pin(uint32_t id) {   /* under locks_lock */
    SyncVar *var = map_get(&lock_vars, id);
    if (var) var->pinned = 1;
}

/* Another thread released a lock `holder` holds, or the lock died: `holder` drops it at its
 * next lock event or access. */
static void mark_stale(uint32_t owner) {
    ThreadState *holder = owner ? thread_at(owner - 1) : NULL;
    if (!holder) return;
    STORE(&holder->stale, 1);
    STORE(&holder->locks_dirty, 1);
}

/* The lockset accesses record, interned after the held set changed. May run GC. */
int refresh_lockset(ThreadState *t) {
    STORE(&t->locks_dirty, 0);   /* first: a change made meanwhile marks it dirty again */
    if (LOAD(&t->stale)) prune(t);
    if (intern_lockset(t) < 0) { STORE(&t->locks_dirty, 1); return -1; }
    t->extra = intern_extra(t->lockset, 0);
    LOCK(&locks_lock);
    for (uint32_t i = 0; i < t->nheld; i++) pin(t->held[i].id);
    UNLOCK(&locks_lock);
    return 0;
}

/* ---- lock ids and names, and locks' deaths ------------------------------------------------- */

/* The id of `lock` (M<id> in reports), numbered the first time it is taken; 0 if it has no
 * sync var. The id is given under the lock's stripe, so a death (which takes the sync var out
 * of its table under the stripe first) sees it. Its name is made only then: a lock's later
 * events read the id alone (a tuple built per event was a third of an event's cost). */
static int64_t lock_id(PyObject *lock) {
    Lock *stripe = stripe_of(lock);
    LOCK(stripe);
    SyncVar *var = table_get(&syncs, lock);
    uint32_t known = var ? LOAD(&var->id) : 0;
    UNLOCK(stripe);
    if (known || !var) return known;
    PyObject *name = Py_BuildValue("(On)", (PyObject *)Py_TYPE(lock), (Py_ssize_t)lock);
    if (!name) return -1;
    int64_t id = 0;
    int used = 0;
    LOCK(stripe);
    var = table_get(&syncs, lock);
    LOCK(&locks_lock);
    if (var && var->id) {
        id = var->id;
    } else if (var) {
        if (map_put(&lock_vars, next_id, var) < 0) {
            id = -1;
        } else if (map_put(&lock_names, next_id, name) < 0) {
            map_del(&lock_vars, next_id);
            id = -1;
        } else {
            used = 1;
            id = next_id++;
            STORE(&var->id, (uint32_t)id);
        }
    }
    UNLOCK(&locks_lock);
    UNLOCK(stripe);
    if (!used) Py_DECREF(name);
    if (id < 0) PyErr_NoMemory();
    return id;
}

/* Note `id` in `list` (dead_locks() / semaphore_locks() hand it to the lock-order graph);
 * under locks_lock. */
static void note_id(Ids *list, uint32_t id) {
    if (list->n == list->cap) {
        uint32_t cap = list->cap ? list->cap * 2 : 64;
        uint32_t *a = PyMem_RawRealloc(list->ids, cap * sizeof(uint32_t));
        if (!a) return;   /* the graph then keeps this lock: at worst a report it could spare */
        list->ids = a;
        list->cap = cap;
    }
    list->ids[list->n++] = id;
}

/* The sync var of a lock is being freed (its lock died, or a fork child starts over); it is
 * out of its table already. */
void lock_var_died(SyncVar *var) {
    PyObject *name = NULL;   /* a tuple holding a type: released with no lock held */
    LOCK(&locks_lock);
    if (map_get(&lock_vars, var->id) == var) map_del(&lock_vars, var->id);
    if (!var->pinned) {
        name = map_get(&lock_names, var->id);
        if (name) map_del(&lock_names, var->id);
    }
    uint32_t owner = var->owner;
    note_id(&dead, var->id);
    UNLOCK(&locks_lock);
    mark_stale(owner);
    Py_XDECREF(name);
}

void forget_locks(void) {   /* a fork child, alone */
    for (size_t i = 0; lock_names.arr && i < lock_names.arr->cap; i++)
        if (slot_live(&lock_names.arr->slots[i]))   /* a deleted name was released then */
            Py_DECREF((PyObject *)lock_names.arr->slots[i].value);
    map_clear(&lock_names);
    map_clear(&lock_vars);
    dead.n = semaphores.n = 0;
}

void locks_after_fork(void) { memset(&locks_lock, 0, sizeof(locks_lock)); }

PyObject *fast_sync_name(PyObject *m, PyObject *id) {
    unsigned long i = PyLong_AsUnsignedLong(id);
    if (i == (unsigned long)-1 && PyErr_Occurred()) { PyErr_Clear(); Py_RETURN_NONE; }
    LOCK(&locks_lock);
    PyObject *name = i ? map_get(&lock_names, i) : NULL;
    name = Py_NewRef(name ? name : Py_None);
    UNLOCK(&locks_lock);
    return name;
}

/* The ids in `list` noted since the last call, as a list, or None. */
static PyObject *take_ids(Ids *list) {
    LOCK(&locks_lock);
    uint32_t n = list->n;
    if (!n) {
        UNLOCK(&locks_lock);
        Py_RETURN_NONE;
    }
    uint32_t *ids = PyMem_RawMalloc(n * sizeof(uint32_t));
    if (ids) {
        memcpy(ids, list->ids, n * sizeof(uint32_t));
        list->n = 0;
    }
    UNLOCK(&locks_lock);
    if (!ids) return PyErr_NoMemory();
    PyObject *out = PyList_New(n);   /* on failure the graph keeps them: no wrong verdict */
    for (uint32_t i = 0; out && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLong(ids[i]);
        if (!v) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, v);
    }
    PyMem_RawFree(ids);
    return out;
}

PyObject *fast_dead_locks(PyObject *m, PyObject *noargs) { return take_ids(&dead); }

PyObject *fast_semaphore_locks(PyObject *m, PyObject *noargs) { return take_ids(&semaphores); }

/* ---- lock-order events ------------------------------------------------------------------- */

static PyObject *where_tuple(PyObject *code, int lasti) {
    if (!code) return Py_BuildValue("(ssi)", "?", "?", 0);
    PyCodeObject *co = (PyCodeObject *)code;
    int line = lasti < 0 ? co->co_firstlineno : PyCode_Addr2Line(co, lasti);
    return Py_BuildValue("(OOi)", co->co_qualname, co->co_filename, line);
}

/* The order_seen key of (the non-inner locks held now but `except`, lock); 0 if none held. */
static int order_key(ThreadState *t, uint32_t except, uint32_t id, uintptr_t *key) {
    uint32_t small[16], *ids = t->nheld <= 16 ? small : PyMem_RawMalloc(t->nheld * sizeof(uint32_t));
    if (!ids) { PyErr_NoMemory(); return -1; }
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->nheld; i++)
        if (!t->held[i].unordered && t->held[i].id != except) ids[n++] = t->held[i].id;
    int64_t set = n ? intern_ids(ids, n) : 0;   /* may run GC */
    if (ids != small) PyMem_RawFree(ids);
    if (set < 0) return -1;
    *key = set ? (uintptr_t)((uint64_t)set << 32 | id) : 0;
    return 0;
}

/* The order_seen key of a held lock's pending event. May run GC. */
static int order_key_of(Held *h, uintptr_t *key) {
    PendingOrder *p = h->order;
    uint32_t small[16], *ids = p->n <= 16 ? small : PyMem_RawMalloc(p->n * sizeof(uint32_t));
    if (!ids) { PyErr_NoMemory(); return -1; }
    for (uint32_t i = 0; i < p->n; i++) ids[i] = p->h[i].id;
    int64_t set = p->n ? intern_ids(ids, p->n) : 0;
    if (ids != small) PyMem_RawFree(ids);
    if (set < 0) return -1;
    *key = (uintptr_t)((uint64_t)set << 32 | h->id);
    return 0;
}

static int order_seen(ThreadState *t, uintptr_t key) {
    return t->order_seen && map_get(t->order_seen, key);
}

/* The pending event of taking lock `id` now: the other non-inner locks held, and where. */
static PendingOrder *pending_order(ThreadState *t, uint32_t id) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->nheld; i++) n += !t->held[i].unordered && t->held[i].id != id;
    PendingOrder *p = PyMem_RawMalloc(sizeof(PendingOrder) + n * sizeof(p->h[0]));
    if (!p) { PyErr_NoMemory(); return NULL; }
    p->n = 0;
    for (uint32_t i = 0; i < t->nheld; i++) {
        Held *h = &t->held[i];
        if (h->unordered || h->id == id) continue;
        p->h[p->n].id = h->id;
        p->h[p->n].lasti = h->lasti;
        p->h[p->n].code = Py_XNewRef(h->code);
        p->n++;
    }
    return p;
}

/* Lock `id` is alive, and a mutex still (no semaphore); under locks_lock. */
static int in_order(uint32_t id) {
    SyncVar *v = map_get(&lock_vars, id);
    return v && !v->signal;
}

/* The lock-order graph's arguments for `h`, taken while holding `h->order`'s locks and now
 * released by the same thread: (tid, held ids, held wheres, lock, where), or NULL (the
 * combination was shown before, or none of those locks is alive). Sets `*err` on failure. */
static PyObject *order_event(ThreadState *t, Held *h, uintptr_t key, int *err) {
    if (!t->order_seen) {
        t->order_seen = PyMem_RawCalloc(1, sizeof(Map));
        if (!t->order_seen) { PyErr_NoMemory(); *err = 1; return NULL; }
    }
    if (map_get(t->order_seen, key)) return NULL;
    if (map_put(t->order_seen, key, (void *)1) < 0) { *err = 1; return NULL; }
    PendingOrder *p = h->order;
    uint8_t small[16], *alive = p->n <= 16 ? small : PyMem_RawMalloc(p->n);
    if (!alive) { PyErr_NoMemory(); *err = 1; return NULL; }
    uint32_t live = 0;
    LOCK(&locks_lock);   /* the locks in order now are pinned: the graph will name them */
    for (uint32_t i = 0; i < p->n; i++) {
        alive[i] = (uint8_t)in_order(p->h[i].id);
        if (alive[i]) pin(p->h[i].id);
        live += alive[i];
    }
    if (live) pin(h->id);
    UNLOCK(&locks_lock);
    PyObject *ids = NULL, *wheres = NULL;
    if (!live) goto done;
    ids = PyTuple_New(live);
    wheres = PyTuple_New(live);
    if (!ids || !wheres) goto fail;
    for (uint32_t i = 0, k = 0; i < p->n; i++) {
        if (!alive[i]) continue;
        PyObject *v = PyLong_FromUnsignedLong(p->h[i].id);
        PyObject *w = v ? where_tuple(p->h[i].code, p->h[i].lasti) : NULL;
        if (!w) { Py_XDECREF(v); goto fail; }
        PyTuple_SET_ITEM(ids, k, v);
        PyTuple_SET_ITEM(wheres, k, w);
        k++;
    }
    PyObject *where = where_tuple(h->code, h->lasti);
    if (!where) goto fail;
    if (alive != small) PyMem_RawFree(alive);
    return Py_BuildValue("(INNIN)", t->tid, ids, wheres, h->id, where);
fail:
    Py_XDECREF(ids);
    Py_XDECREF(wheres);
    *err = 1;
done:
    if (alive != small) PyMem_RawFree(alive);
    return NULL;
}

/* ---- the events ----------------------------------------------------------------------------- */

/* An inner lock taken or released by instrumented code (`with q.mutex:` in the program) is
 * a plain mutex for that event: its release orders the lock's next acquisitions, the
 * primitive's own included, and its acquisition is ordered after every earlier release,
 * the primitive's own included (runtime/held.py). */
static int outside_use(void) {
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed */
    if (!frame) return 0;
    PyCodeObject *code = PyFrame_GetCode(frame);
    int yes = code_instrumented(code);
    Py_DECREF(code);
    return yes;
}

static int lock_event(PyObject *lock, int is_acquire, int flags, unsigned long count) {
    ThreadState *t = current();
    if (!t) return -1;
    int inner = (flags & RW_LOCK_INNER) != 0, reentrant = (flags & RW_LOCK_REENTRANT) != 0;
    PyObject *graph = LOAD(&lock_order) ? config_ref(&lock_order) : NULL;
    PyObject *code = NULL;   /* where: only lock order asks, of non-inner locks' acquisitions */
    int lasti = -1;
    if (inner) inner = !outside_use();
    if (is_acquire && graph && !inner) {
        PyFrameObject *frame = PyEval_GetFrame();   /* borrowed; may allocate its object */
        if (frame) {
            code = (PyObject *)PyFrame_GetCode(frame);
            lasti = PyFrame_GetLasti(frame);
        }
    }
    PendingOrder *pending = NULL;
    PyObject *order = NULL;
    Held released = {0}, dropped = {0};   /* cleared with no lock held */
    uintptr_t key = 0;
    int err = 0;
    if (!sync_var(lock)) goto error;   /* may run GC */
    int64_t found = lock_id(lock);
    if (found <= 0) {   /* 0: cannot happen (the caller holds `lock`); be safe */
        if (found < 0) goto error;
        Py_XDECREF(code);
        Py_XDECREF(graph);
        return 0;
    }
    uint32_t id = (uint32_t)found;
    if (LOAD(&t->stale)) prune(t);
    if (is_acquire && graph && !inner && t->nheld) {
        Held *already = find_held(t, id);
        if (!(already && reentrant)) {
            if (order_key(t, id, id, &key) < 0) goto error;   /* may run GC */
            if (key && !order_seen(t, key) && !(pending = pending_order(t, id))) goto error;
        }
    }
    /* from here to the end of the update, nothing allocates Python objects */
    Lock *stripe = stripe_of(lock);
    LOCK(stripe);
    SyncVar *var = table_get(&syncs, lock);
    if (!var) {
        UNLOCK(stripe);
        free_pending(pending);
        Py_XDECREF(code);
        Py_XDECREF(graph);
        return 0;
    }
    uint32_t signalled = 0;   /* the thread that held a lock this thread released */
    LOCK(&locks_lock);
    var->inner = (uint8_t)inner;
    if (is_acquire) {
        /* the lock's clock holds only releases by plain (non-inner) use; plain use also
         * takes in the primitive's own releases (`with q.mutex:` peeking at a put's item) */
        if (vc_join(&t->vc, &var->vc) < 0 || (!inner && vc_join(&t->vc, &var->inner_vc) < 0))
            err = 1;
        Held *h = find_held(t, id);
        if (err) {
            dropped = (Held){0, 0, 0, 0, -1, code, pending};
        } else if (h && reentrant) {
            h->count += (uint32_t)count;
            dropped = (Held){0, 0, 0, 0, -1, code, pending};
        } else {
            if (h) released = take_held(t, h);   /* a plain lock taken again: its release was
                                                  * unseen (C code released it) */
            /* a semaphore takes no part in lock order: no event of its own either */
            Held fresh = {id, (uint32_t)count, (uint8_t)inner, (uint8_t)(inner || var->signal),
                          lasti, code, var->signal ? NULL : pending};
            if (put_held(t, fresh) < 0) {
                dropped.code = code;
                dropped.order = pending;
                err = 1;
            } else if (var->signal) {
                dropped.order = pending;
            }
        }
        if (!err) var->owner = t->tid + 1;
    } else {
        dropped.code = code;
        if (vc_join(inner ? &var->inner_vc : &var->vc, &t->vc) < 0) {
            err = 1;
        } else if (var->owner && var->owner != t->tid + 1) {   /* a plain lock used as a signal */
            signalled = var->owner;
            var->owner = 0;
            if (!var->signal) {   /* a semaphore now: the graph forgets it */
                var->signal = 1;
                note_id(&semaphores, var->id);
            }
        } else if (var->owner) {
            Held *h = find_held(t, id);
            if (!h) {
                var->owner = 0;
            } else {
                h->count = count == 0 || !reentrant || count >= h->count ? 0 : h->count - (uint32_t)count;
                if (!h->count) {
                    released = take_held(t, h);
                    var->owner = 0;
                }
            }
        }
    }
    UNLOCK(&locks_lock);
    UNLOCK(stripe);
    mark_stale(signalled);
    clear_held(&dropped);
    if (!is_acquire && released.order && !err) {   /* the graph runs Python code: last */
        uintptr_t seen;
        if (order_key_of(&released, &seen) < 0) err = 1;
        else order = order_event(t, &released, seen, &err);
    }
    clear_held(&released);
    if (err) { Py_XDECREF(graph); return -1; }
    tick(t);
    if (order && graph) {
        PyObject *r = PyObject_Call(graph, order, NULL);
        if (!r) PyErr_WriteUnraisable(graph);   /* never into the program's `with` */
        Py_XDECREF(r);
    }
    Py_XDECREF(order);
    Py_XDECREF(graph);
    return 0;
error:
    free_pending(pending);
    Py_XDECREF(code);
    Py_XDECREF(graph);
    return -1;
}

static int sink_acquired(PyObject *lock, int flags, unsigned long count) {
    return lock_event(lock, 1, flags, count);
}

static int sink_released(PyObject *lock, int flags, unsigned long count) {
    return lock_event(lock, 0, flags, count);
}

static int sink_before(PyObject *obj) { return sync_edge(obj, 0); }
static int sink_after(PyObject *obj) { return sync_edge(obj, 1); }

static const RwLockSink sink = {sink_acquired, sink_released, sink_before, sink_after};

PyObject *locks_sink_capsule(void) {
    return PyCapsule_New((void *)&sink, RW_LOCK_SINK_CAPSULE, NULL);
}

static PyObject *from_python(int is_acquire, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "lock_acquired/lock_released(lock, flags, count)");
        return NULL;
    }
    long flags = PyLong_AsLong(args[1]);
    unsigned long count = flags == -1 && PyErr_Occurred() ? 0 : PyLong_AsUnsignedLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (lock_event(args[0], is_acquire, (int)flags, count) < 0) return NULL;
    Py_RETURN_NONE;
}

PyObject *fast_lock_acquired(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    return from_python(1, args, nargs);
}

PyObject *fast_lock_released(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    return from_python(0, args, nargs);
}
