/* Lock hooks: every _thread.lock and _thread.RLock reports its own acquire and release (and
 * every _queue.SimpleQueue its puts and gets, the same way).
 *
 * The acquire/release methods of both types are replaced, in the types' own dicts, by method
 * descriptors of the same name and doc that call the original and tell the engine (an edge
 * only when the real call succeeded; a release is told before it happens, as TSan does, so no
 * waiter can take the lock before its clock is published). The types stay the same objects:
 * identity, __module__, __qualname__, pickling and signatures are those of CPython's.
 * Whoever calls them is seen: the program, the standard library (threading.Condition,
 * logging, queue), another package, a C extension through the method.
 *
 * Creation is observed without replacing anything a program can name: the types' tp_new and
 * tp_vectorcall slots and the PyMethodDef behind the `_thread.allocate_lock` function object
 * (the same object as threading.Lock on 3.11/3.12, and as threading._allocate_lock). A lock's
 * creation stack and its flags live in a table keyed by address, freed by a deallocator hook.
 *
 * Hidden locks report nothing: racewatch's own, threading's bookkeeping of threads and the
 * interpreter's thread-end markers (`_thread._set_sentinel`, released by C code at thread
 * exit): racewatch models threads itself. Inner locks, the private locks of primitives
 * racewatch models by their own semantics (Event, Queue...: runtime/interceptors.py), report
 * with RW_LOCK_INNER: they order nothing, but code run while holding one is mutually excluded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_locks_api.h"

#ifdef Py_GIL_DISABLED
static PyMutex table_mutex;
#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer does not see CPython's PyMutex (not instrumented): say what it orders */
#include <sanitizer/tsan_interface.h>
#define TABLE_LOCK() (PyMutex_Lock(&table_mutex), __tsan_acquire(&table_mutex))
#define TABLE_UNLOCK() (__tsan_release(&table_mutex), PyMutex_Unlock(&table_mutex))
#else
#define TABLE_LOCK() PyMutex_Lock(&table_mutex)
#define TABLE_UNLOCK() PyMutex_Unlock(&table_mutex)
#endif
/* `used` is written under the lock and tested without it (an empty table: nothing to look up) */
#define USED() __atomic_load_n(&used, __ATOMIC_RELAXED)
#define SET_USED(v) __atomic_store_n(&used, (v), __ATOMIC_RELAXED)
#else
#define TABLE_LOCK() ((void)0)
#define TABLE_UNLOCK() ((void)0)
#define USED() (used)
#define SET_USED(v) (used = (v))
#endif

#define MAX_FRAMES 64

/* ---- the table: one entry per lock racewatch knows something about ------------------------- */

enum { F_HIDDEN = 1, F_INNER = 2 };

typedef struct {
    uint32_t flags, nframes;
    struct { PyObject *code; int lasti; } frames[];   /* creation stack, innermost first */
} Entry;

typedef struct { uintptr_t key; Entry *value; } Slot;
static Slot *slots;
static size_t cap, used;   /* cap: a power of two; slots more than half full are grown */

static inline size_t home(uintptr_t k) { return (size_t)((k >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1); }

static Entry *table_get(uintptr_t key) {
    if (!used) return NULL;
    for (size_t i = home(key);; i = (i + 1) & (cap - 1)) {
        if (slots[i].key == key) return slots[i].value;
        if (!slots[i].key) return NULL;
    }
}

static void table_place(uintptr_t key, Entry *value) {
    size_t i = home(key);
    while (slots[i].key) i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].value = value;
}

/* Insert or replace; returns the entry replaced (for the caller to free), or NULL. -1 on
 * memory failure is reported as (Entry *)-1. */
static Entry *table_put(uintptr_t key, Entry *value) {
    if (used) {
        for (size_t i = home(key);; i = (i + 1) & (cap - 1)) {
            if (slots[i].key == key) { Entry *old = slots[i].value; slots[i].value = value; return old; }
            if (!slots[i].key) break;
        }
    }
    if ((used + 1) * 2 > cap) {
        size_t ncap = cap ? cap * 2 : 256;
        Slot *fresh = PyMem_RawCalloc(ncap, sizeof(Slot)), *old = slots;
        if (!fresh) return (Entry *)-1;
        size_t ocap = cap;
        slots = fresh;
        cap = ncap;
        for (size_t i = 0; i < ocap; i++) if (old[i].key) table_place(old[i].key, old[i].value);
        PyMem_RawFree(old);
    }
    table_place(key, value);
    SET_USED(used + 1);
    return NULL;
}

static Entry *table_pop(uintptr_t key) {
    if (!used) return NULL;
    size_t i = home(key);
    while (slots[i].key != key) {
        if (!slots[i].key) return NULL;
        i = (i + 1) & (cap - 1);
    }
    Entry *found = slots[i].value;
    /* backward-shift deletion keeps every probe run unbroken */
    for (size_t j = (i + 1) & (cap - 1); slots[j].key; j = (j + 1) & (cap - 1)) {
        size_t h = home(slots[j].key);
        if (((j - h) & (cap - 1)) >= ((j - i) & (cap - 1))) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i].key = 0;
    slots[i].value = NULL;
    SET_USED(used - 1);
    return found;
}

/* Frees an entry; its code references are dropped (may run no user code: code objects have no
 * finalizers, and a code object's death frees only its own parts). */
static void entry_free(Entry *e) {
    if (!e || e == (Entry *)-1) return;
    for (uint32_t i = 0; i < e->nframes; i++) Py_DECREF(e->frames[i].code);
    PyMem_RawFree(e);
}

static inline uint32_t flags_of(PyObject *lock) {
    if (!USED()) return 0;
    TABLE_LOCK();
    Entry *e = table_get((uintptr_t)lock);
    uint32_t flags = e ? e->flags : 0;
    TABLE_UNLOCK();
    return flags;
}

/* The calling thread's Python stack as (code, lasti) pairs: the lock's creation stack. */
static Entry *capture(uint32_t flags) {
    PyFrameObject *frames[MAX_FRAMES];
    uint32_t n = 0;
    PyFrameObject *frame = PyEval_GetFrame();
    Py_XINCREF(frame);
    while (frame && n < MAX_FRAMES) {
        frames[n++] = frame;
        frame = PyFrame_GetBack(frame);
    }
    Py_XDECREF(frame);
    Entry *e = PyMem_RawMalloc(sizeof(Entry) + n * sizeof(e->frames[0]));
    if (e) {
        e->flags = flags;
        e->nframes = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (e) {
            e->frames[i].code = (PyObject *)PyFrame_GetCode(frames[i]);
            e->frames[i].lasti = PyFrame_GetLasti(frames[i]);
        }
        Py_DECREF(frames[i]);
    }
    return e;
}

static void note(PyObject *lock, Entry *e) {
    if (!e) return;   /* out of memory: the lock is simply not known */
    TABLE_LOCK();
    Entry *old = table_put((uintptr_t)lock, e);
    TABLE_UNLOCK();
    if (old == (Entry *)-1) entry_free(e);
    else entry_free(old);
}

/* ---- where events go: an engine's C API, or two Python callables ---------------------------- */

static const RwLockSink *sink_c;          /* the C runtime's capsule */
static PyObject *sink_acquired, *sink_released;   /* or these, with (lock, flags, count), */
static PyObject *sink_before, *sink_after;        /* and these, with (obj) */
static int track_creation;

static int active(void) { return sink_c || sink_acquired; }

/* A release-like (put) or acquire-like (get) edge on a primitive that is not a lock. */
static void edge(int after, PyObject *obj) {
    if (sink_c) {
        if ((after ? sink_c->happens_after : sink_c->happens_before)(obj) < 0)
            PyErr_WriteUnraisable(obj);
        return;
    }
    PyObject *fn = after ? sink_after : sink_before;
    if (!fn) return;
    Py_INCREF(fn);
    PyObject *r = PyObject_CallOneArg(fn, obj);
    if (!r) PyErr_WriteUnraisable(fn);
    Py_XDECREF(r);
    Py_DECREF(fn);
}

static void tell(int acquire, PyObject *lock, int flags, unsigned long count) {
    if (sink_c) {
        if ((acquire ? sink_c->acquired : sink_c->released)(lock, flags, count) < 0)
            PyErr_WriteUnraisable(lock);   /* never into the program's `with` */
        return;
    }
    PyObject *fn = acquire ? sink_acquired : sink_released;
    if (!fn) return;
    Py_INCREF(fn);   /* uninstall() may run meanwhile, in a finalizer */
    PyObject *f = PyLong_FromLong(flags);
    PyObject *n = f ? PyLong_FromUnsignedLong(count) : NULL;
    PyObject *r = n ? PyObject_CallFunctionObjArgs(fn, lock, f, n, NULL) : NULL;
    Py_XDECREF(f);
    Py_XDECREF(n);
    if (!r) PyErr_WriteUnraisable(fn);
    Py_XDECREF(r);
    Py_DECREF(fn);
}

/* ---- the method hooks ------------------------------------------------------------------------ */

enum { A_ACQUIRE, A_RELEASE, A_RELEASE_ALL, A_RESTORE, A_PUT, A_GET };

typedef struct {
    const char *name;
    int action;
    PyMethodDef def;      /* ours: the original's name and doc, our function */
    PyObject *original;   /* the type's own descriptor (kept: bound methods outlive uninstall) */
    PyObject *ours;       /* our descriptor */
    int installed;
    int noargs;           /* the original takes no arguments: a call with some only fails */
} Hook;

typedef struct {
    PyTypeObject *type;
    int reentrant;
    Hook *hooks;
    int nhooks;
    newfunc new_original;
    vectorcallfunc vectorcall_original;
    destructor dealloc_original;
} HookedType;

static PyObject *call_original(Hook *h, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t total = nargs + nkw + 1;
    PyObject *small[8];
    PyObject **stack = total <= 8 ? small : PyMem_Malloc(total * sizeof(PyObject *));
    if (!stack) return PyErr_NoMemory();
    stack[0] = self;
    memcpy(stack + 1, args, (nargs + nkw) * sizeof(PyObject *));
    PyObject *r = PyObject_Vectorcall(h->original, stack, nargs + 1, kwnames);
    if (stack != small) PyMem_Free(stack);
    return r;
}

/* RLock._acquire_restore((count, owner)): the levels it restores. */
static unsigned long restored_count(PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) < 1) return 1;
    unsigned long n = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(args[0], 0));
    if (n == (unsigned long)-1 && PyErr_Occurred()) { PyErr_Clear(); return 1; }
    return n ? n : 1;
}

static PyObject *run_hook(HookedType *t, Hook *h, PyObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames) {
    if (h->action == A_PUT || h->action == A_GET) {   /* a queue's hand-off */
        int watch = active();
        if (watch && h->action == A_PUT) edge(0, self);   /* a getter may run at once */
        PyObject *r = call_original(h, self, args, nargs, kwnames);
        if (r && watch && h->action == A_GET) edge(1, self);
        return r;
    }
    uint32_t known = active() ? flags_of(self) : F_HIDDEN;
    int watch = !(known & F_HIDDEN);
    int flags = (t->reentrant ? RW_LOCK_REENTRANT : 0) | (known & F_INNER ? RW_LOCK_INNER : 0);
    if (watch && h->action != A_ACQUIRE && h->action != A_RESTORE &&
        !(h->noargs && (nargs || kwnames))) {
        tell(0, self, flags, h->action == A_RELEASE_ALL ? 0 : 1);
    }
    PyObject *r = call_original(h, self, args, nargs, kwnames);
    if (!r || !watch) return r;
    if (h->action == A_ACQUIRE) {
        if (r == Py_True) tell(1, self, flags, 1);
    } else if (h->action == A_RESTORE) {
        tell(1, self, flags, restored_count(args, nargs));
    }
    return r;
}

static Hook lock_hooks[] = {
    {"acquire", A_ACQUIRE}, {"acquire_lock", A_ACQUIRE}, {"__enter__", A_ACQUIRE},
    {"release", A_RELEASE}, {"release_lock", A_RELEASE}, {"__exit__", A_RELEASE},
};
static Hook rlock_hooks[] = {
    {"acquire", A_ACQUIRE}, {"__enter__", A_ACQUIRE}, {"release", A_RELEASE},
    {"__exit__", A_RELEASE}, {"_release_save", A_RELEASE_ALL},
    {"_acquire_restore", A_RESTORE},
};
static Hook queue_hooks[] = {
    {"put", A_PUT}, {"put_nowait", A_PUT}, {"get", A_GET}, {"get_nowait", A_GET},
};
#define NLOCK (int)(sizeof(lock_hooks) / sizeof(lock_hooks[0]))
#define NRLOCK (int)(sizeof(rlock_hooks) / sizeof(rlock_hooks[0]))
#define NQUEUE (int)(sizeof(queue_hooks) / sizeof(queue_hooks[0]))

static HookedType lock_type = {NULL, 0, lock_hooks, NLOCK};
static HookedType rlock_type = {NULL, 1, rlock_hooks, NRLOCK};
static HookedType queue_type = {NULL, 0, queue_hooks, NQUEUE};

/* A PyMethodDef has no closure: one small function per hook. */
#define HOOK_FN(T, I)                                                                        \
    static PyObject *hook_##T##_##I(PyObject *self, PyObject *const *args, Py_ssize_t nargs, \
                                    PyObject *kwnames) {                                     \
        return run_hook(&T##_type, &T##_hooks[I], self, args, nargs, kwnames);               \
    }
HOOK_FN(lock, 0) HOOK_FN(lock, 1) HOOK_FN(lock, 2) HOOK_FN(lock, 3) HOOK_FN(lock, 4)
HOOK_FN(lock, 5)
HOOK_FN(rlock, 0) HOOK_FN(rlock, 1) HOOK_FN(rlock, 2) HOOK_FN(rlock, 3) HOOK_FN(rlock, 4)
HOOK_FN(rlock, 5)
HOOK_FN(queue, 0) HOOK_FN(queue, 1) HOOK_FN(queue, 2) HOOK_FN(queue, 3)
typedef PyObject *(*HookFn)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);
static const HookFn lock_fns[NLOCK] = {hook_lock_0, hook_lock_1, hook_lock_2, hook_lock_3,
                                       hook_lock_4, hook_lock_5};
static const HookFn rlock_fns[NRLOCK] = {hook_rlock_0, hook_rlock_1, hook_rlock_2,
                                         hook_rlock_3, hook_rlock_4, hook_rlock_5};
static const HookFn queue_fns[NQUEUE] = {hook_queue_0, hook_queue_1, hook_queue_2,
                                         hook_queue_3};

/* Put our descriptor in place of each hooked method the type has. */
static int hook_methods(HookedType *t, const HookFn *fns) {
    PyObject *dict = t->type->tp_dict;
    for (int i = 0; i < t->nhooks; i++) {
        Hook *h = &t->hooks[i];
        if (h->installed) continue;
        if (!h->original) {
            PyObject *original = PyDict_GetItemString(dict, h->name);   /* borrowed */
            if (!original || !PyObject_TypeCheck(original, &PyMethodDescr_Type))
                continue;   /* not on this version */
            PyMethodDef *od = ((PyMethodDescrObject *)original)->d_method;
            h->def.ml_name = od->ml_name;
            h->def.ml_doc = od->ml_doc;
            h->def.ml_meth = (PyCFunction)(void (*)(void))fns[i];
            h->def.ml_flags = METH_FASTCALL | METH_KEYWORDS;
            h->noargs = (od->ml_flags & METH_NOARGS) != 0;
            h->ours = PyDescr_NewMethod(t->type, &h->def);
            if (!h->ours) return -1;
            h->original = Py_NewRef(original);
        }
        if (PyDict_SetItemString(dict, h->name, h->ours) < 0) return -1;
        h->installed = 1;
    }
    PyType_Modified(t->type);
    return 0;
}

static int unhook_methods(HookedType *t) {
    if (!t->type) return 0;
    PyObject *dict = t->type->tp_dict;
    for (int i = 0; i < t->nhooks; i++) {
        Hook *h = &t->hooks[i];
        if (!h->installed) continue;
        if (PyDict_SetItemString(dict, h->name, h->original) < 0) return -1;
        h->installed = 0;   /* bound methods made meanwhile still call the original */
    }
    PyType_Modified(t->type);
    return 0;
}

/* ---- creation and death ------------------------------------------------------------------ */

static int creating;   /* while installed: subclasses may have inherited the slots */

static void created(PyObject *lock, uint32_t flags) {
    if (!lock || !creating) return;
    if (flags) note(lock, capture(flags));   /* hidden locks are never in a report... */
    else if (track_creation) note(lock, capture(0));   /* ...others may be, with their stack */
}

static PyObject *lock_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    PyObject *lock = lock_type.new_original(tp, args, kw);
    created(lock, 0);
    return lock;
}

static PyObject *rlock_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    PyObject *lock = rlock_type.new_original(tp, args, kw);
    created(lock, 0);
    return lock;
}

static PyObject *lock_vectorcall(PyObject *tp, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames) {
    PyObject *lock = lock_type.vectorcall_original(tp, args, nargsf, kwnames);
    created(lock, 0);
    return lock;
}

static PyObject *rlock_vectorcall(PyObject *tp, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames) {
    PyObject *lock = rlock_type.vectorcall_original(tp, args, nargsf, kwnames);
    created(lock, 0);
    return lock;
}

static void forget_lock(PyObject *op) {
    if (!USED()) return;
    TABLE_LOCK();
    Entry *e = table_pop((uintptr_t)op);
    TABLE_UNLOCK();
    entry_free(e);
}

static void lock_dealloc(PyObject *op) { forget_lock(op); lock_type.dealloc_original(op); }
static void rlock_dealloc(PyObject *op) { forget_lock(op); rlock_type.dealloc_original(op); }

/* Module functions that make locks: `_thread.allocate_lock` and its alias, and (3.11/3.12)
 * `_thread._set_sentinel`. The function objects stay; their PyMethodDef is swapped for a copy
 * whose C function calls the original's and notes the lock. */
typedef struct {
    const char *name;
    uint32_t flags;        /* of the locks it makes */
    PyCFunctionObject *func;
    PyMethodDef *original;
    PyMethodDef def;
} Maker;

static Maker makers[] = {
    {"allocate_lock", 0}, {"allocate", 0}, {"_set_sentinel", F_HIDDEN},
};
#define NMAKERS (int)(sizeof(makers) / sizeof(makers[0]))

static PyObject *make_with(Maker *m, PyObject *self, PyObject *arg) {
    PyObject *lock = m->original->ml_meth(self, arg);
    created(lock, m->flags);
    return lock;
}
#define MAKER_FN(I) \
    static PyObject *maker_##I(PyObject *self, PyObject *arg) { return make_with(&makers[I], self, arg); }
MAKER_FN(0) MAKER_FN(1) MAKER_FN(2)
static const PyCFunction maker_fns[NMAKERS] = {maker_0, maker_1, maker_2};

static int hook_makers(PyObject *thread_module) {
    for (int i = 0; i < NMAKERS; i++) {
        Maker *m = &makers[i];
        if (m->func) continue;
        PyObject *f = PyObject_GetAttrString(thread_module, m->name);
        if (!f) { PyErr_Clear(); continue; }
        if (!PyCFunction_Check(f)) { Py_DECREF(f); continue; }
        PyCFunctionObject *cf = (PyCFunctionObject *)f;
        /* only METH_NOARGS (every version so far): any other convention is left alone */
        if ((cf->m_ml->ml_flags & (METH_VARARGS | METH_FASTCALL | METH_NOARGS | METH_O |
                                   METH_KEYWORDS | METH_METHOD)) != METH_NOARGS) {
            Py_DECREF(f);
            continue;
        }
        m->original = cf->m_ml;
        m->def = *cf->m_ml;
        m->def.ml_meth = maker_fns[i];
        m->func = cf;   /* keeps the reference */
        cf->m_ml = &m->def;
    }
    return 0;
}

static void unhook_makers(void) {
    for (int i = 0; i < NMAKERS; i++) {
        Maker *m = &makers[i];
        if (!m->func) continue;
        m->func->m_ml = m->original;
        Py_CLEAR(m->func);
    }
}

/* The originals are kept for good: a subclass made meanwhile inherited our tp_new. */
static void hook_slots(HookedType *t, newfunc new_fn, vectorcallfunc vc_fn, destructor dealloc_fn) {
    PyTypeObject *tp = t->type;
    if (!t->dealloc_original) {   /* for good: table entries must always die with their lock */
        t->dealloc_original = tp->tp_dealloc;
        tp->tp_dealloc = dealloc_fn;
    }
    if (!t->new_original) t->new_original = tp->tp_new;
    if (!t->vectorcall_original) t->vectorcall_original = tp->tp_vectorcall;
    if (t->new_original) tp->tp_new = new_fn;
    if (t->vectorcall_original) tp->tp_vectorcall = vc_fn;
}

static void unhook_slots(HookedType *t) {
    if (!t->type) return;
    if (t->new_original) t->type->tp_new = t->new_original;
    if (t->vectorcall_original) t->type->tp_vectorcall = t->vectorcall_original;
}

/* ---- the Python twin's guard: collections paused while a thread is inside --------------- */

/* The twin (runtime/guard.py) runs Python code under its lock, where a collection could run a
 * program's finalizer that waits for a lock whose holder waits for the twin's: a hang. So
 * automatic collection is off from before a thread takes that lock to after it released it,
 * and counting the threads inside and switching collection must be one step, taken with no
 * lock of racewatch's held: a collection can start wherever Python code runs, and on 3.12+ one
 * already scheduled runs as any call returns (as `gc.isenabled()` or `gc.enable()` returns).
 * Here it is one C call: atomic under the GIL, under a PyMutex without it (PyGC_Enable and
 * PyGC_Disable only set a flag, on every version: nothing else runs under it).
 *
 * While a thread is inside, the program's own gc.enable(), gc.disable() and gc.isenabled()
 * act on the state the program set (`gc_wanted`), put in place when the last thread leaves:
 * the program never sees collections off that it left on, and a thread leaving never undoes
 * its gc.disable(). Their function objects stay; each one's PyMethodDef is swapped for a copy,
 * as for the lock makers above. (C code that calls PyGC_Enable() itself meanwhile is not seen.)
 */
static Py_ssize_t gc_inside;   /* threads between gc_pause() and gc_resume() */
static int gc_wanted;          /* the program's state while gc_inside > 0 */
#ifdef Py_GIL_DISABLED
static PyMutex gc_mutex;
#if defined(__SANITIZE_THREAD__)
#define GC_LOCK() (PyMutex_Lock(&gc_mutex), __tsan_acquire(&gc_mutex))
#define GC_UNLOCK() (__tsan_release(&gc_mutex), PyMutex_Unlock(&gc_mutex))
#else
#define GC_LOCK() PyMutex_Lock(&gc_mutex)
#define GC_UNLOCK() PyMutex_Unlock(&gc_mutex)
#endif
#else
#define GC_LOCK() ((void)0)
#define GC_UNLOCK() ((void)0)
#endif

static PyObject *locks_gc_pause(PyObject *m, PyObject *noargs) {
    GC_LOCK();
    if (gc_inside++ == 0) gc_wanted = PyGC_Disable();
    GC_UNLOCK();
    Py_RETURN_NONE;
}

static PyObject *locks_gc_resume(PyObject *m, PyObject *noargs) {
    GC_LOCK();
    if (gc_inside > 0 && --gc_inside == 0 && gc_wanted) PyGC_Enable();
    GC_UNLOCK();
    Py_RETURN_NONE;   /* a collection scheduled meanwhile runs as this call returns */
}

/* In a fork child only the forking thread runs, outside the guard: the program's state back */
static PyObject *locks_gc_after_fork(PyObject *m, PyObject *noargs) {
#ifdef Py_GIL_DISABLED
    memset(&gc_mutex, 0, sizeof(gc_mutex));   /* another thread may have held it */
#endif
    if (gc_inside) {
        gc_inside = 0;
        if (gc_wanted) PyGC_Enable();
    }
    Py_RETURN_NONE;
}

static PyObject *gc_switch(int on) {
    GC_LOCK();
    if (gc_inside) gc_wanted = on;
    else if (on) PyGC_Enable();
    else PyGC_Disable();
    GC_UNLOCK();
    Py_RETURN_NONE;
}

static PyObject *gc_enable_hooked(PyObject *module, PyObject *noargs) { return gc_switch(1); }
static PyObject *gc_disable_hooked(PyObject *module, PyObject *noargs) { return gc_switch(0); }

static PyObject *gc_isenabled_hooked(PyObject *module, PyObject *noargs) {
    GC_LOCK();
    int enabled = gc_inside ? gc_wanted : PyGC_IsEnabled();
    GC_UNLOCK();
    return PyBool_FromLong(enabled);
}

static struct {
    const char *name;
    PyCFunction fn;
    PyCFunctionObject *func;
    PyMethodDef def;
} gc_hooks[] = {
    {"enable", gc_enable_hooked}, {"disable", gc_disable_hooked},
    {"isenabled", gc_isenabled_hooked},
};

/* Once, for good: outside the guard the hooked functions do what the originals do. */
static PyObject *locks_gc_hook(PyObject *m, PyObject *noargs) {
    PyObject *gc = PyImport_ImportModule("gc");
    if (!gc) return NULL;
    for (size_t i = 0; i < sizeof(gc_hooks) / sizeof(gc_hooks[0]); i++) {
        if (gc_hooks[i].func) continue;
        PyObject *f = PyObject_GetAttrString(gc, gc_hooks[i].name);
        if (!f) { Py_DECREF(gc); return NULL; }
        PyCFunctionObject *cf = (PyCFunctionObject *)f;
        /* METH_NOARGS module functions on every version so far: anything else is left alone */
        if (!PyCFunction_Check(f) || cf->m_self != gc ||
            (cf->m_ml->ml_flags & (METH_VARARGS | METH_FASTCALL | METH_NOARGS | METH_O |
                                   METH_KEYWORDS | METH_METHOD)) != METH_NOARGS) {
            Py_DECREF(f);
            continue;
        }
        gc_hooks[i].def = *cf->m_ml;
        gc_hooks[i].def.ml_meth = gc_hooks[i].fn;
        gc_hooks[i].func = cf;   /* keeps the reference */
        cf->m_ml = &gc_hooks[i].def;
    }
    Py_DECREF(gc);
    Py_RETURN_NONE;
}

/* ---- module functions ---------------------------------------------------------------------- */

static int find_types(void) {
    if (lock_type.type) return 0;
    PyObject *thread = PyImport_ImportModule("_thread");
    if (!thread) return -1;
    PyObject *lt = PyObject_GetAttrString(thread, "LockType");
    PyObject *rt = lt ? PyObject_GetAttrString(thread, "RLock") : NULL;
    Py_DECREF(thread);
    if (!rt || !PyType_Check(lt) || !PyType_Check(rt)) {
        Py_XDECREF(lt);
        Py_XDECREF(rt);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "unexpected _thread lock types");
        return -1;
    }
    lock_type.type = (PyTypeObject *)lt;
    rlock_type.type = (PyTypeObject *)rt;
    hook_slots(&lock_type, lock_new, lock_vectorcall, lock_dealloc);
    hook_slots(&rlock_type, rlock_new, rlock_vectorcall, rlock_dealloc);
    unhook_slots(&lock_type);   /* creation is observed only while installed */
    unhook_slots(&rlock_type);
    return 0;
}

static PyObject *locks_install(PyObject *m, PyObject *args, PyObject *kw) {
    static char *names[] = {"sink", "track_creation", NULL};
    PyObject *sink;
    int creation = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p", names, &sink, &creation)) return NULL;
    const RwLockSink *c = NULL;
    PyObject *acq = NULL, *rel = NULL, *before = NULL, *after = NULL;
    if (PyCapsule_CheckExact(sink)) {
        c = PyCapsule_GetPointer(sink, RW_LOCK_SINK_CAPSULE);
        if (!c) return NULL;
    } else if (!PyArg_ParseTuple(sink, "OOOO", &acq, &rel, &before, &after)) {
        return NULL;
    }
    if (find_types() < 0) return NULL;
    PyObject *thread = PyImport_ImportModule("_thread");
    if (!thread) return NULL;
    int err = hook_makers(thread);
    Py_DECREF(thread);
    if (err < 0 || hook_methods(&lock_type, lock_fns) < 0 ||
        hook_methods(&rlock_type, rlock_fns) < 0)
        return NULL;
    hook_slots(&lock_type, lock_new, lock_vectorcall, lock_dealloc);
    hook_slots(&rlock_type, rlock_new, rlock_vectorcall, rlock_dealloc);
    creating = 1;
    sink_c = c;
    Py_XSETREF(sink_acquired, Py_XNewRef(acq));
    Py_XSETREF(sink_released, Py_XNewRef(rel));
    Py_XSETREF(sink_before, Py_XNewRef(before));
    Py_XSETREF(sink_after, Py_XNewRef(after));
    track_creation = creation;
    Py_RETURN_NONE;
}

static PyObject *locks_uninstall(PyObject *m, PyObject *noargs) {
    sink_c = NULL;
    creating = 0;
    Py_CLEAR(sink_acquired);
    Py_CLEAR(sink_released);
    Py_CLEAR(sink_before);
    Py_CLEAR(sink_after);
    if (unhook_methods(&lock_type) < 0 || unhook_methods(&rlock_type) < 0 ||
        unhook_methods(&queue_type) < 0)
        return NULL;
    unhook_slots(&lock_type);
    unhook_slots(&rlock_type);
    unhook_makers();
    Py_RETURN_NONE;
}

/* Hook _queue.SimpleQueue too (once the program imports queue: the _queue module is not
 * imported at startup). Only while installed. */
static PyObject *locks_hook_simple_queue(PyObject *m, PyObject *noargs) {
    if (!active()) Py_RETURN_NONE;
    if (!queue_type.type) {
        PyObject *mod = PyImport_ImportModule("_queue");
        PyObject *tp = mod ? PyObject_GetAttrString(mod, "SimpleQueue") : NULL;
        Py_XDECREF(mod);
        if (!tp) return NULL;
        if (!PyType_Check(tp)) {
            Py_DECREF(tp);
            PyErr_SetString(PyExc_TypeError, "unexpected _queue.SimpleQueue");
            return NULL;
        }
        queue_type.type = (PyTypeObject *)tp;
    }
    if (hook_methods(&queue_type, queue_fns) < 0) return NULL;
    Py_RETURN_NONE;
}

static int check_lock(PyObject *obj) {
    if (find_types() < 0) return -1;
    if (PyObject_TypeCheck(obj, lock_type.type) || PyObject_TypeCheck(obj, rlock_type.type))
        return 0;
    PyErr_Format(PyExc_TypeError, "not a _thread lock: %.100s", Py_TYPE(obj)->tp_name);
    return -1;
}

static PyObject *mark(PyObject *lock, uint32_t flag) {
    if (check_lock(lock) < 0) return NULL;
    TABLE_LOCK();
    Entry *e = table_get((uintptr_t)lock);
    if (e) e->flags |= flag;
    TABLE_UNLOCK();
    if (!e) {
        Entry *fresh = PyMem_RawMalloc(sizeof(Entry));
        if (!fresh) return PyErr_NoMemory();
        fresh->flags = flag;
        fresh->nframes = 0;
        note(lock, fresh);
    }
    Py_RETURN_NONE;
}

static PyObject *locks_hide(PyObject *m, PyObject *lock) { return mark(lock, F_HIDDEN); }
static PyObject *locks_mark_inner(PyObject *m, PyObject *lock) { return mark(lock, F_INNER); }

static PyObject *locks_flags(PyObject *m, PyObject *lock) {
    uint32_t flags = flags_of(lock);
    return Py_BuildValue("{s:O,s:O}", "hidden", flags & F_HIDDEN ? Py_True : Py_False,
                         "inner", flags & F_INNER ? Py_True : Py_False);
}

/* The creation stack of the live lock at `address`, as ((code, line), ...), or None. */
static PyObject *locks_creation_of(PyObject *m, PyObject *address) {
    uintptr_t key = (uintptr_t)PyLong_AsVoidPtr(address);
    if (!key && PyErr_Occurred()) return NULL;
    TABLE_LOCK();
    Entry *e = table_get(key);
    uint32_t n = e && !(e->flags & F_HIDDEN) ? e->nframes : 0;
    PyObject *codes[MAX_FRAMES];
    int lastis[MAX_FRAMES];
    for (uint32_t i = 0; i < n; i++) {
        codes[i] = Py_NewRef(e->frames[i].code);
        lastis[i] = e->frames[i].lasti;
    }
    TABLE_UNLOCK();
    if (!n) Py_RETURN_NONE;
    PyObject *stack = PyTuple_New(n);
    for (uint32_t i = 0; i < n; i++) {
        PyCodeObject *code = (PyCodeObject *)codes[i];
        int line = lastis[i] < 0 ? code->co_firstlineno : PyCode_Addr2Line(code, lastis[i]);
        PyObject *pair = stack ? Py_BuildValue("(Oi)", codes[i], line) : NULL;
        Py_DECREF(codes[i]);
        if (stack && !pair) Py_CLEAR(stack);
        if (stack) PyTuple_SET_ITEM(stack, i, pair);
    }
    return stack;
}

static PyObject *locks_after_fork(PyObject *m, PyObject *noargs) {
#ifdef Py_GIL_DISABLED
    memset(&table_mutex, 0, sizeof(table_mutex));   /* another thread may have held it */
#endif
    Py_RETURN_NONE;
}

static PyObject *locks_known(PyObject *m, PyObject *noargs) {
    return PyLong_FromSize_t(USED());
}

static PyMethodDef methods[] = {
    {"install", (PyCFunction)(void (*)(void))locks_install, METH_VARARGS | METH_KEYWORDS,
     "install(sink, track_creation=True): lock events go to sink, a capsule of the C runtime "
     "or (acquired, released, happens_before, happens_after) callables: (lock, flags, count) "
     "with flags as in _locks_api.h, and (obj)."},
    {"hook_simple_queue", locks_hook_simple_queue, METH_NOARGS,
     "_queue.SimpleQueue's puts and gets report their edges too (while installed)."},
    {"uninstall", locks_uninstall, METH_NOARGS, "Put the original methods back."},
    {"hide", locks_hide, METH_O, "hide(lock): its acquire and release report nothing."},
    {"mark_inner", locks_mark_inner, METH_O,
     "mark_inner(lock): its events order nothing; holding it still excludes."},
    {"flags", locks_flags, METH_O, "flags(lock): {'hidden': bool, 'inner': bool}."},
    {"creation_of", locks_creation_of, METH_O,
     "creation_of(address): ((code, line), ...) where the live lock there was made, or None."},
    {"after_fork", locks_after_fork, METH_NOARGS, "In a fork child."},
    {"known", locks_known, METH_NOARGS, "How many locks the table holds."},
    {"gc_pause", locks_gc_pause, METH_NOARGS,
     "A thread enters the Python twin's guard: automatic collection off while any is inside."},
    {"gc_resume", locks_gc_resume, METH_NOARGS,
     "A thread left the guard: collection as the program set it when the last one leaves."},
    {"gc_hook", locks_gc_hook, METH_NOARGS,
     "gc.enable(), gc.disable() and gc.isenabled() act on the program's state while inside."},
    {"gc_after_fork", locks_gc_after_fork, METH_NOARGS, "In a fork child."},
    {NULL},
};

static PyModuleDef_Slot module_slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "racewatch.runtime._locks",
    "Lock hooks: every _thread.lock and _thread.RLock reports its own acquire and release.",
    0, methods, module_slots,
};

PyMODINIT_FUNC PyInit__locks(void) { return PyModuleDef_Init(&module_def); }
