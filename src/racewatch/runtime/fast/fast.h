/* What the files of the C runtime (racewatch.runtime._fast) share: its data layouts, its
 * tables and the functions each file offers the others. runtime/api.py is the Python twin.
 *
 * Under the GIL each call is atomic with respect to other Python threads, so the runtime's
 * state needs no lock. What can run in the middle of a call is the cyclic GC (and with it
 * finalizers and weakref callbacks, which may call back in here) whenever a Python object is
 * allocated or released. So every such allocation happens at a point where the tables are
 * consistent, and pointers into the tables are looked up again after it.
 */
#ifndef RACEWATCH_FAST_H
#define RACEWATCH_FAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The fast path crosses files (a token's slot, the same-epoch test, the record lookup): its
 * functions are marked HOT and, with link-time optimization (setup.py), inlined whole into
 * the slots as in one file. */
#if defined(__GNUC__) || defined(__clang__)
#define HOT __attribute__((always_inline)) inline
#else
#define HOT
#endif

/* ---- epochs and vector clocks (clock.c; same layout as runtime/clock.py) ------------------ */

#define TID_BITS 24
#define CLOCK_SHIFT (TID_BITS + 1)
#define TID_MASK ((1u << TID_BITS) - 1)
#define EPOCH_TID(e) ((uint32_t)(((e) >> 1) & TID_MASK))
#define EPOCH_CLOCK(e) ((e) >> CLOCK_SHIFT)

typedef struct {
    uint32_t n;
    uint64_t *c;   /* clock of each thread, by tid */
} VC;

int vc_grow(VC *vc, uint32_t n);
int vc_join(VC *dst, const VC *src);

static inline int ordered(uint64_t e, const VC *vc) {
    uint32_t tid = EPOCH_TID(e);
    return EPOCH_CLOCK(e) <= (tid < vc->n ? vc->c[tid] : 0);
}

/* site kinds (runtime/sitekinds.py) */
enum {
    K_NONE, K_ATTR, K_SUPER, K_GLOBAL, K_CELL, K_ITEM, K_ITEM_DELETE, K_SLICE, K_CONTAINS,
    K_ITER, K_EQ, K_CALL, K_METHOD_READ, K_METHOD_WRITE, K_METHOD_ATOMIC_READ,
    K_METHOD_ATOMIC_WRITE, K_UNUSED_16, K_IMPORTED, K_INITIALIZED, K_CONCAT, K_ATOMIC
};

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

/* ---- threads (threads.c) ---------------------------------------------------------------- */

/* A lock-order event not shown to the graph yet: the locks held when a lock was taken (their
 * ids and where each was taken), shown once the same thread releases it (locks.c). */
typedef struct {
    uint32_t n;
    struct { uint32_t id; int lasti; PyObject *code; } h[];
} PendingOrder;

/* A lock a thread holds. */
typedef struct {
    uint32_t id, count;    /* its M<id>, and re-entry count */
    uint8_t inner;         /* a modelled primitive's own lock: no part in lock order */
    uint8_t unordered;     /* no part in lock order: inner, or a semaphore (SyncVar.signal) */
    int lasti;             /* where its outermost acquisition was made: code and byte offset */
    PyObject *code;        /* (a reference, or NULL: no Python frame, or lock order is off) */
    PendingOrder *order;   /* the lock-order event of that acquisition, or NULL */
} Held;

typedef struct {
    uint32_t tid;
    uint64_t epoch;        /* clock << CLOCK_SHIFT | tid << 1 */
    VC vc;
    uint32_t nheld, capheld;
    Held *held;            /* locks held, by id */
    void *order_seen;      /* Map: (held set << 32 | lock) already shown to the lock-order graph */
    uint8_t stale;         /* a lock it holds was released by another thread, or died */
    uint8_t locks_dirty;   /* the held set changed since `lockset` was interned */
    uint32_t lockset;      /* interned id of the sorted held ids (see refresh_lockset) */
    uint32_t extra;        /* interned (lockset, no stack): what its accesses record */
} ThreadState;

/* initial-exec: a plain offset from the thread pointer instead of a __tls_get_addr call on
 * every probe (8 bytes fit glibc's surplus static TLS for dlopen'ed modules) */
extern __thread ThreadState *tls_state __attribute__((tls_model("initial-exec")));
extern uint32_t nthreads;

ThreadState *new_thread(void);
ThreadState *thread_at(uint32_t tid);
void tick(ThreadState *t);
void forget_threads(void);

static inline ThreadState *current(void) {
    ThreadState *t = tls_state;
    return t ? t : new_thread();
}

/* ---- pointer-keyed hash map (map.c) ------------------------------------------------------ */

typedef struct {
    uintptr_t key;   /* 0: empty */
    void *value;
} Slot;

typedef struct {
    Slot *slots;
    size_t cap, used;
} Map;

void *map_get(const Map *m, uintptr_t key);
int map_put(Map *m, uintptr_t key, void *value);
void map_del(Map *m, uintptr_t key);
void map_clear(Map *m);

/* ---- shadow records and sync vars (record.c, lifetime.c) -------------------------------- */

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

static inline PyObject *untag(uintptr_t key) { return (PyObject *)(key & ~TAG_MASK); }

typedef struct {
    Tracked head;
    uint32_t id;      /* M<id> in reports, once taken as a lock */
    uint32_t owner;   /* tid + 1 of the thread holding the lock; 0: nobody */
    uint8_t inner;    /* a modelled primitive's own lock: it orders nothing, holding excludes */
    uint8_t signal;   /* released by another thread once: a semaphore, out of lock order */
    uint8_t pinned;   /* its name outlives it: an access or the lock-order graph refers to it */
    VC vc;
} SyncVar;

/* A weakref subtype that knows its Tracked: the death callback frees it. */
typedef struct {
    PyWeakReference base;
    Tracked *owner;
    uintptr_t addr;   /* the referent's, which is gone when the callback runs */
} Ref;

/* record.c: a record's cells */
int safe_key(PyObject *key, int depth);
Py_hash_t key_hash(PyObject *key, int safe);
int key_info(PyObject *key, Py_hash_t *hash, uint8_t *safe);
PyObject *weak_target(PyObject *ref);
void cell_load(const Record *rec, uint32_t i, CellState *s);
int find_cell(Record *rec, PyObject *key, Py_hash_t hash, uint8_t safe);
int32_t find_hot(const Record *rec, PyObject *key);
int add_cell(PyObject *obj, Record **recp, PyObject *key, Py_hash_t hash, uint8_t safe);
int cell_store(PyObject *obj, Record **recp, uint32_t i, const CellState *s);
uint32_t first_cells(PyTypeObject *tp);

/* lifetime.c: the object -> tracker tables, and the tie of each tracker to its object */
extern Map objects, syncs;
extern size_t shadow_bytes, shadow_peak;
extern Tracked **strong_list;
extern size_t nstrong, capstrong, strong_since_sweep;
#define SWEEP_EVERY 4096
extern PyTypeObject RefType;

void account(Py_ssize_t delta);
Tracked *tracked_new(PyObject *obj, uint8_t kind);
Tracked *tracked_insert(Map *m, PyObject *obj, Tracked *tr);
void free_all(Tracked **list, size_t n);
void sweep(void);
void hook_dealloc(PyTypeObject *tp);
int lifetime_init(void);
PyObject *fast_watch_death(PyObject *m, PyObject *obj);
PyObject *fast_deaths(PyObject *m, PyObject *noargs);

/* ---- configuration (module.c) ------------------------------------------------------------ */

extern uint8_t *site_kinds;
extern size_t nsite_kinds;
extern PyObject *on_race;          /* callable(event) or NULL */
extern PyObject *lock_order;       /* callable(tid, held, held_wheres, lock, where), or NULL */
extern PyObject *ignored_types;    /* tuple of types whose instances are never shared */
extern PyObject *shape_key;        /* the key of a container's shape (locations.SHAPE) */
extern PyObject *items_key;        /* the key of a dict's values (locations.ITEMS) */
extern PyTypeObject *deque_type;   /* collections.deque */
extern PyTypeObject *defaultdict_type;   /* collections.defaultdict */
extern int history_full;
#define MAX_ACCESSORS 32
enum { HOW_ATTR, HOW_SHAPE, HOW_BULK, HOW_COPY };   /* locations.ACCESSORS' "how" */
typedef struct { PyObject *func; int is_write, how; } Accessor;
extern Accessor accessors[MAX_ACCESSORS];
extern int naccessors;
/* The accessors again, by address in an open-addressed table four times their number: a
 * callee is told apart in one or two loads. */
#define ACCESSOR_SLOTS 128
extern PyObject *accessor_slots[ACCESSOR_SLOTS];
#define ACCESSOR_SLOT(func) (((uintptr_t)(func) >> 4) & (ACCESSOR_SLOTS - 1))

/* ---- interned context of accesses (depot.c) --------------------------------------------- */

extern PyObject *lockset_list;     /* list: id -> tuple of sync ids */
extern PyObject *stack_list;       /* list: id -> tuple of (code, line) pairs */
extern uint32_t *extra_lockset, *extra_stack;
extern uint32_t nextra;

int64_t intern_ids(const uint32_t *ids, uint32_t n);
int intern_lockset(ThreadState *t);
int locksets_overlap(uint32_t a, uint32_t b);
uint32_t capture_stack(void);
uint32_t intern_extra(uint32_t lockset, uint32_t stack);
PyObject *lockset_tuple(uint32_t id);
PyObject *stack_tuple(uint32_t id);
int depot_init(void);

/* ---- reports (report.c) ----------------------------------------------------------------- */

typedef struct {
    Access prev;
    int prev_write;
} Found;

#define FOUND_ON_STACK 8   /* more (a write after many concurrent readers) go to the heap */

extern PyObject *reported;   /* dict: (site, site) -> count */

int report_found(PyObject *target, PyObject *key, ThreadState *t, uint32_t site,
                 int is_write, int atomic, Found *found, int nfound);

/* ---- where an access lands (locations.c) ------------------------------------------------ */

enum { C_NONE, C_DICT, C_LIST, C_SET, C_DEQUE, C_BYTEARRAY };

typedef struct {
    PyObject *owner, *key;   /* new references */
    int is_write, atomic;
} Loc;

/* The accesses one probe stands for: a few, or a bulk read's many (on the heap then). */
typedef struct {
    Loc *a;
    int n, cap;
    Loc small[8];
} Locs;

static inline void locs_init(Locs *ls) {
    ls->a = ls->small;
    ls->n = 0;
    ls->cap = 8;
}

#define SLICE_ITEMS 16   /* a slice assignment covers its items; at most this many recorded */
#define BLOCK 16         /* items per block of a list-like: locations.BLOCK */
#define BLOCK_KEYS 4096  /* blocks whose keys are made once (the fast path finds them) */

int container_kind(PyObject *o);
int exact_container(PyTypeObject *tp);
int maybe_container(PyObject *o);
int maybe_sequence(PyObject *o);
PyObject *shape_owner(PyObject *obj);
/* An instance of a static type, or of an immutable one (as _thread.lock), without a __dict__:
 * none of its attributes can be rebound, so reading one is no access. */
static inline int no_attributes(PyTypeObject *tp) {
    return (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || (tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE))
           && tp->tp_dictoffset == 0;
}

PyObject *attr_owner(PyObject *obj, PyObject *key);
PyObject *super_lookup(PyObject *obj, PyObject *key);
int add_loc(Locs *ls, PyObject *owner, PyObject *key, int is_write, int atomic);
void locs_clear(Locs *ls);
Py_ssize_t builtin_len(PyObject *obj);
PyObject *block_key(Py_ssize_t k);
int bulk_locs(PyObject *obj, int values, Locs *ls);
int resolve(PyObject *obj, PyObject *key, uint8_t kind, int is_write, Locs *ls);
int locations_init(void);

/* ---- attributes through instances (attributes.c) ---------------------------------------- */

/* How an access of an attribute of an instance lands, by what its class's attribute is. */
enum {
    AT_INSTANCE,   /* the instance's own attribute */
    AT_CLASS,      /* a method: the class's attribute */
    AT_VALUE,      /* a class-level value: the instance's, and the class's unless shadowed */
    AT_NOTHING,    /* a property or data descriptor running instrumented code */
    AT_DICT        /* __dict__: the instance's, and the dict becomes the instance's alias */
};

/* The plan of reads and writes of attribute `name` of instances of `type`, while its
 * version tag holds. */
typedef struct {
    PyTypeObject *type;
    PyObject *name;
    unsigned int version;
    uint8_t container;      /* instances are builtin containers (method probes: the shape) */
    uint8_t read, write;    /* AT_*: a write plan covers deletes */
    PyObject *owner;        /* the class whose attribute a read reads (AT_CLASS, AT_VALUE) */
} AttrCache;

const AttrCache *attr_hit(PyTypeObject *tp, PyObject *name);
AttrCache attr_plan(PyTypeObject *tp, PyObject *key, int container);
int attr_locs(PyObject *obj, PyObject *key, int is_write, Locs *ls);
int attr_same_epoch(PyObject *obj, PyObject *key, int is_write, uint32_t site, uint32_t *hint);
int method_same_epoch(PyObject *obj, PyObject *key, uint32_t site, uint32_t *hint);
PyObject *alias_owner(PyObject *dict);
PyObject *fast_instance_dict(PyObject *m, PyObject *obj);
int attributes_init(void);

/* ---- accesses (access.c) ---------------------------------------------------------------- */

extern uintptr_t last_addr;   /* the one-entry cache of record_of: clear when a record goes */

PyObject *probe(PyObject *obj, PyObject *key, PyObject *site_obj, int is_write);
int same_epoch(PyObject *obj, PyObject *key, long site, int is_write, uint32_t *hint);
int same_epoch_at(PyObject *owner, PyObject *key, int is_write, int atomic, uint32_t site,
                  uint32_t *hint);
PyObject *fast_read(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *fast_write(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *fast_call(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *call_access(PyObject *func, PyObject *a0, PyObject *a1, PyObject *site_obj);

/* Whether `func` is a builtin accessor (len, getattr...): by identity, as hashing could run
 * user code. */
static inline int is_accessor(PyObject *func) {
    for (size_t i = ACCESSOR_SLOT(func); accessor_slots[i]; i = (i + 1) & (ACCESSOR_SLOTS - 1))
        if (accessor_slots[i] == func) return 1;
    return 0;
}

/* ---- synchronization (sync.c) ----------------------------------------------------------- */

SyncVar *sync_var(PyObject *obj);
int sync_edge(PyObject *obj, int is_acquire);
PyObject *fast_happens_after(PyObject *m, PyObject *obj);
PyObject *fast_happens_before(PyObject *m, PyObject *obj);
PyObject *fast_thread_end(PyObject *m, PyObject *obj);

/* ---- locks: who holds what, locksets, lock order (locks.c) ------------------------------ */

int refresh_lockset(ThreadState *t);
void lock_var_died(SyncVar *var);
void free_held(ThreadState *t);
void forget_locks(void);
PyObject *fast_lock_acquired(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *fast_lock_released(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *fast_dead_locks(PyObject *m, PyObject *noargs);
PyObject *fast_semaphore_locks(PyObject *m, PyObject *noargs);
PyObject *fast_sync_name(PyObject *m, PyObject *id);
PyObject *locks_sink_capsule(void);

/* ---- token probes (tokens.c) ------------------------------------------------------------ */

PyObject *fast_token(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *fast_enable(PyObject *m, PyObject *flag);
int tokens_init(void);

#endif
