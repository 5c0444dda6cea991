/* What the files of the C runtime (racewatch.runtime._fast) share: its data layouts, its
 * tables and the functions each file offers the others. runtime/api.py is the Python twin.
 *
 * With a GIL each call is atomic with respect to other Python threads, so the runtime's state
 * needs no lock. Without one (free-threaded builds), every shared table has racewatch's own
 * locks (below), and the fast path reads with atomic loads what writers may change, from
 * memory that is freed only once no fast path can be reading it (guards.c). Either way, what
 * can run in the middle of a call is code the call itself starts: the cyclic GC (with its
 * finalizers and weakref callbacks, which may call back in here) at an allocation under the GIL
 * of 3.11, a finalizer when a reference is released. So every such allocation or release
 * happens with no racewatch lock held and the tables consistent, and pointers into the tables
 * are looked up again after it.
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

/* ---- synchronization without a GIL (guards.c) ------------------------------------------
 * Free-threaded builds guard each shared table with racewatch's own PyMutex (never a critical
 * section on a user object: it is suspended whenever the thread blocks). Locks are taken only
 * in this order, and never around code that can run Python code or release an object: an
 * object's stripe, then a map shard, then one of the leaf locks (depot, reports, config,
 * strong list, retire list, then the thread registry). With a GIL they compile to nothing and
 * the atomics to plain accesses: the GIL build is what it was. */
#if defined(__SANITIZE_THREAD__)
#define RW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RW_TSAN 1
#endif
#endif

#ifdef Py_GIL_DISABLED
#define RW_FREE_THREADED 1
typedef PyMutex Lock;
#if defined(__SANITIZE_ADDRESS__)
#define RW_ASAN 1   /* AddressSanitizer: racewatch's memory from libc, which it watches */
#endif
#ifdef RW_TSAN
/* ThreadSanitizer (.ci/tsan) sees only what is compiled with it: CPython's PyMutex is not, so
 * each lock says what it orders, and racewatch's memory comes from libc, whose malloc and free
 * ThreadSanitizer watches (CPython's mimalloc it cannot see). */
#include <sanitizer/tsan_interface.h>
#define LOCK(m) (PyMutex_Lock(m), __tsan_acquire(m))
#define UNLOCK(m) (__tsan_release(m), PyMutex_Unlock(m))
#else
#define LOCK(m) PyMutex_Lock(m)
#define UNLOCK(m) PyMutex_Unlock(m)
#endif
#if defined(RW_TSAN) || defined(RW_ASAN)
#undef PyMem_RawMalloc
#undef PyMem_RawCalloc
#undef PyMem_RawRealloc
#undef PyMem_RawFree
#undef PyMem_Malloc
#undef PyMem_Calloc
#undef PyMem_Free
#define PyMem_RawMalloc malloc
#define PyMem_RawCalloc calloc
#define PyMem_RawRealloc realloc
#define PyMem_RawFree free
#define PyMem_Malloc malloc
#define PyMem_Calloc calloc
#define PyMem_Free free
#endif
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#else
typedef struct { char unused; } Lock;
#define LOCK(m) ((void)(m))
#define UNLOCK(m) ((void)(m))
#define LOAD(p) (*(p))
#define STORE(p, v) (*(p) = (v))
#define LOAD_ACQ(p) (*(p))
#define STORE_REL(p, v) (*(p) = (v))
#endif

/* An object's stripe: the lock of its record's cells and of its sync var's clock. */
Lock *stripe_of(const void *obj);

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
    uint32_t depth;        /* free-threaded: nesting of ebr_enter */
    uint64_t active;       /* free-threaded: the epoch announced while inside, else 0 */
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

/* ---- memory a fast path may be reading (locks.c) ---------------------------------------- */

/* Free `p` with `free_fn` once no thread can be reading it (at once with a GIL). */
void retire(void *p, void (*free_fn)(void *));
void retired_counts(size_t *now, size_t *peak);
int guards_init(void);
void guards_after_fork(void);

#ifdef RW_FREE_THREADED
extern uint64_t ebr_epoch;
extern int ebr_asymmetric;
uint64_t oldest_announcement(uint64_t now);   /* threads.c */

/* Everything read between ebr_enter and ebr_exit stays allocated until the exit. */
static inline void ebr_enter(ThreadState *t) {
    if (t->depth++) return;
    uint64_t epoch = LOAD_ACQ(&ebr_epoch);
    if (ebr_asymmetric) {
        STORE(&t->active, epoch);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);   /* the reclaimer fences for this thread */
    } else {
        __atomic_exchange_n(&t->active, epoch, __ATOMIC_SEQ_CST);
    }
}

static inline void ebr_exit(ThreadState *t) {
    if (--t->depth) return;
    STORE_REL(&t->active, 0);
}
#else
#define ebr_enter(t) ((void)(t))
#define ebr_exit(t) ((void)(t))
#endif

/* ---- pointer-keyed hash map (map.c) ------------------------------------------------------ */

typedef struct {
    uintptr_t key;   /* 0: empty */
    void *value;
} Slot;

typedef struct {
    size_t cap;      /* a power of two */
    Slot slots[];
} Slots;

typedef struct {
    Slots *arr;      /* replaced whole when it grows: readers never see a half-made one */
    size_t used, dead;
} Map;

#define TOMBSTONE UINTPTR_MAX   /* a deleted key (free-threaded); never an address */

/* Whether a slot holds an entry: neither empty nor deleted (what a walk of the slots keeps). */
static inline int slot_live(const Slot *s) { return s->key && s->key != TOMBSTONE; }

/* Lock-free readers may look up while one writer (holding the map's lock) changes it. */
void *map_get(const Map *m, uintptr_t key);
int map_put(Map *m, uintptr_t key, void *value);
void map_del(Map *m, uintptr_t key);
void map_clear(Map *m);

/* Object tables: maps by object address, in shards with a lock each (one shard with a GIL). */
#ifdef RW_FREE_THREADED
#define SHARD_BITS 6
#else
#define SHARD_BITS 0
#endif
typedef struct {
    Lock lock;
    Map map;
#ifdef RW_FREE_THREADED
} __attribute__((aligned(64))) Shard;   /* a cache line each: no false sharing of locks */
#else
} Shard;
#endif
typedef struct {
    Shard shards[1 << SHARD_BITS];
} Table;

void *table_get(Table *t, const void *obj);
int table_put(Table *t, const void *obj, void *value);
void table_del(Table *t, const void *obj);
size_t table_count(Table *t);
size_t table_take_all(Table *t, void **into);

/* ---- shadow records and sync vars (record.c, lifetime.c) -------------------------------- */

typedef struct {
    uint64_t epoch;   /* 0: none */
    uint32_t site;
    uint32_t extra;   /* interned (lockset, stack) of the access; 0: no lock held, no stack */
} Access;

/* A record is a header, the keys of its `capcells` cells (all the fast path compares), then
 * the cells' state in one of two layouts:
 * - compact, in the record: every access recorded so far was made in one epoch (`epoch0`) with
 *   one interned (lockset, stack) (`extra0`). That is how most objects live and die: made, used
 *   and dropped by one thread between two synchronizations. A cell then keeps only which of its
 *   last write and read happened, where, and whether atomically: 8 bytes instead of 32.
 * - full, in an array of its own (`full`): FastTrack's epochs of the last write and read (hot:
 *   the fast path reads them), then their sites and extras (cold: for the full check and for
 *   reports).
 * A record starts compact and turns full for good at the first access that does not fit, in
 * place: the record does not move, so the compact copy is not left behind as garbage (objects
 * one thread makes and others read turn full by the million; without a GIL the maker's
 * allocator never got their old copies back while it waited). */
#define TAG_WEAK 1u    /* key: held through a weakref (compared by identity) */
#define TAG_RACED 2u   /* key: a race was found here; the fast path leaves it to the full
                        * check, which then compares sites too */
#define TAG_DIGEST 4u   /* key: a deleted key, kept as a Digest of its value (see release_key) */
#define TAG_MASK ((uintptr_t)7)
/* A full cell's r, once reads are concurrent, is the address of their Shared set tagged with
 * the top bit, which no epoch has: one word, so a fast path reads the set or an epoch, never a
 * mix of both. */
#define SHARED_BIT (1ull << 63)
#define IS_SHARED(r) (((r) & SHARED_BIT) != 0)
#define SHARED_OF(r) ((Shared *)(uintptr_t)((r) & ~SHARED_BIT))
#define SHARED_R(sh) (SHARED_BIT | (uint64_t)(uintptr_t)(sh))

typedef struct {
    uint64_t w, r;   /* epochs of the last write and read */
} Epochs;

typedef struct {
    uint32_t n;      /* one Access per tid below n (the last one set); never changed */
    Access a[];
} Shared;

typedef struct {
    uint32_t w_site, w_extra;
    union {
        struct { uint32_t site, extra; } one;   /* of the one read, while r is an epoch */
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
    Epochs *full;      /* the full layout's state (then Cold after the Epochs), or NULL:
                        * compact; set once, with release (a fast path may be reading) */
    uintptr_t keys[];  /* a strong reference, under TAG_WEAK a weakref to the key, under
                        * TAG_DIGEST a Digest */
} Record;

#define EPOCHS(rec) ((rec)->full)
#define COLD(rec) ((Cold *)((rec)->full + (rec)->capcells))
#define MARKS(rec) ((Marks *)((rec)->keys + (rec)->capcells))
#define FIRST_CELLS 2
#define RECORD_SIZE(cap) (sizeof(Record) + (size_t)(cap) * (sizeof(uintptr_t) + sizeof(Marks)))
#define FULL_SIZE(cap) ((size_t)(cap) * (sizeof(Epochs) + sizeof(Cold)))

/* A cell's state in the full layout's terms, wherever the record keeps it. */
typedef struct {
    uint64_t w, r;
    Cold c;
} CellState;

static inline uint64_t mark_epoch(const Record *rec, uint32_t mark) {
    return mark ? rec->epoch0 | (mark >> 31) : 0;
}

static inline PyObject *untag(uintptr_t key) { return (PyObject *)(key & ~TAG_MASK); }

/* What a cell keeps of a key deleted from its dict, holding no reference: its type and two
 * independent hashes of its value (NULL type: an identity key, which then matches nothing). */
typedef struct {
    PyTypeObject *type;
    Py_hash_t hash;
    uint64_t hash2;
} Digest;

typedef struct {
    Tracked head;
    uint32_t id;      /* M<id> in reports, once taken as a lock */
    uint32_t owner;   /* tid + 1 of the thread holding the lock; 0: nobody */
    uint8_t inner;    /* a modelled primitive's own lock: it orders nothing, holding excludes */
    uint8_t signal;   /* released by another thread once: a semaphore, out of lock order */
    uint8_t pinned;   /* its name outlives it: an access or the lock-order graph refers to it */
    VC vc;            /* releases: a lock's by plain use only */
    VC inner_vc;      /* a lock's releases by its primitive (inner): only plain use joins it */
} SyncVar;

/* A weakref subtype that knows its Tracked: the death callback frees it. */
typedef struct {
    PyWeakReference base;
    Tracked *owner;
    uintptr_t addr;   /* the referent's, which is gone when the callback runs */
} Ref;

/* readsets.c: interned read sets (each result comes with one more cell holding it) */
Shared *readset_with(const Shared *sh, uint32_t tid, Access mine);
Shared *readset_pair(uint32_t tid1, Access a1, uint32_t tid2, Access a2);
void readset_release(Shared *sh);
void readsets_after_fork(void);
void readset_counts(size_t *sets, size_t *bytes);

/* record.c: a record's cells */
int safe_key(PyObject *key, int depth);
Py_hash_t key_hash(PyObject *key, int safe);
int key_info(PyObject *key, Py_hash_t *hash, uint8_t *safe);
PyObject *weak_target(PyObject *ref);
void cell_load(const Record *rec, uint32_t i, CellState *s);
int find_cell(Record *rec, PyObject *key, Py_hash_t hash, uint8_t safe);
int32_t find_hot(const Record *rec, PyObject *key);
int add_cell(PyObject *obj, Record **recp, PyObject *key, Py_hash_t hash, uint8_t safe,
             PyObject **weak);
int cell_store(PyObject *obj, Record **recp, uint32_t i, const CellState *s);
uint32_t first_cells(PyTypeObject *tp);
void release_key(Record *rec, uint32_t i, PyObject **released);
PyObject *held_key(uintptr_t tagged);   /* the reference a cell holds, or NULL */

/* lifetime.c: the object -> tracker tables, and the tie of each tracker to its object */
extern Table objects, syncs;
extern size_t shadow_bytes, shadow_peak;
extern size_t nstrong, strong_since_sweep;
#define SWEEP_EVERY 4096
extern PyTypeObject RefType;

void account(Py_ssize_t delta);
Tracked *tracked_new(PyObject *obj, uint8_t kind);
Tracked *tracked_insert(Table *t, PyObject *obj, Tracked *tr);
void free_all(Tracked **list, size_t n);
void sweep(void);
void hook_dealloc(PyTypeObject *tp, int trashcan);
int watch_by_hook(PyObject *obj);
void strong_after_fork(void);
int lifetime_init(void);
PyObject *fast_watch_death(PyObject *m, PyObject *obj);
PyObject *fast_deaths(PyObject *m, PyObject *noargs);

/* ---- configuration (module.c) ------------------------------------------------------------ */

extern uint8_t *site_kinds;   /* replaced whole when it grows, published before its size */
extern size_t nsite_kinds;

static inline uint8_t site_kind(long site) {
    if (site < 0 || (size_t)site >= LOAD_ACQ(&nsite_kinds)) return K_NONE;
    return LOAD(&LOAD_ACQ(&site_kinds)[site]);
}
extern PyObject *on_race;          /* callable(event) or NULL */
PyObject *config_ref(PyObject **slot);   /* a new reference to a configured object, or NULL */
int dict_get_ref(PyObject *dict, PyObject *key, PyObject **value);   /* PyDict_GetItemRef */
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


int64_t intern_ids(const uint32_t *ids, uint32_t n);
int intern_lockset(ThreadState *t);
int extra_shares_lock(uint32_t extra, uint32_t locks);
uint32_t capture_stack(void);
uint32_t intern_extra(uint32_t lockset, uint32_t stack);
PyObject *lockset_tuple(uint32_t id);
PyObject *stack_tuple(uint32_t id);
void extra_parts(uint32_t id, uint32_t *lockset, uint32_t *stack);
int depot_init(void);
void depot_after_fork(void);

/* ---- reports (report.c) ----------------------------------------------------------------- */

typedef struct {
    Access prev;
    int prev_write;
} Found;

#define FOUND_ON_STACK 8   /* more (a write after many concurrent readers) go to the heap */

extern PyObject *reported;   /* dict: (site, site) -> count */

int report_found(PyObject *target, PyObject *key, ThreadState *t, uint32_t site,
                 int is_write, int atomic, Found *found, int nfound);
PyObject *fast_races(PyObject *m, PyObject *noargs);
void report_after_fork(void);

/* ---- where an access lands (locations.c) ------------------------------------------------ */

enum { C_NONE, C_DICT, C_LIST, C_SET, C_DEQUE, C_BYTEARRAY };

typedef struct {
    PyObject *owner, *key;   /* new references (key NULL: a list-like's blocks) */
    int is_write, atomic;
    int release;   /* a key deleted from its dict: its cell no longer holds it */
    Py_ssize_t blocks;   /* key NULL: blocks 0..blocks-1 of owner, each checked in turn */
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
int eq_reads(PyObject *a, PyObject *b);
int maybe_sequence(PyObject *o);
PyObject *shape_owner(PyObject *obj);
/* An instance of a static type, or of an immutable one (as _thread.lock), without a __dict__:
 * none of its attributes can be rebound, so reading one is no access. */
static inline int no_attributes(PyTypeObject *tp) {
    return (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || (tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE))
           && tp->tp_dictoffset == 0;
}

PyObject *attr_owner(PyObject *obj, PyObject *key, PyObject **hold);
PyObject *super_lookup(PyObject *obj, PyObject *key);
int add_loc(Locs *ls, PyObject *owner, PyObject *key, int is_write, int atomic);
void locs_clear(Locs *ls);
Py_ssize_t builtin_len(PyObject *obj);
PyObject *block_key(Py_ssize_t k);
PyObject *block_key_ref(Py_ssize_t k);
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
 * version tag holds. Without a GIL, threads fill entries under a lock, and a reader copies an
 * entry between two reads of its sequence number (odd while it is written): a torn copy is a
 * miss. */
typedef struct {
    uint32_t seq;
    PyTypeObject *type;
    PyObject *name;
    unsigned int version;
    uint8_t container;      /* instances are builtin containers (method probes: the shape) */
    uint8_t read, write;    /* AT_*: a write plan covers deletes */
    PyObject *owner;        /* the class whose attribute a read reads (AT_CLASS, AT_VALUE) */
} AttrCache;

const AttrCache *attr_hit(PyTypeObject *tp, PyObject *name, AttrCache *buf);
AttrCache attr_plan(PyTypeObject *tp, PyObject *key, int container);
int attr_locs(PyObject *obj, PyObject *key, int is_write, Locs *ls);
int attr_same_epoch(PyObject *obj, PyObject *key, int is_write, uint32_t site, uint32_t *hint);
int method_same_epoch(PyObject *obj, PyObject *key, uint32_t site, uint32_t *hint);
PyObject *alias_owner(PyObject *dict);
void alias_instance_died(PyObject *op);
PyObject *fast_instance_dict(PyObject *m, PyObject *obj);
PyObject *fast_note_dict(PyObject *m, PyObject *obj);
PyObject *fast_alias_owner(PyObject *m, PyObject *dict);
int attributes_init(void);

/* ---- accesses (access.c) ---------------------------------------------------------------- */

#ifndef RW_FREE_THREADED
extern uintptr_t last_addr;   /* the one-entry cache of record_of: clear when a record goes */
#endif

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
void join_start_edge(ThreadState *t);
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
int code_instrumented(PyCodeObject *code);
PyObject *fast_sync_name(PyObject *m, PyObject *id);
void locks_after_fork(void);
PyObject *locks_sink_capsule(void);

/* ---- token probes (tokens.c) ------------------------------------------------------------ */

PyObject *fast_token(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *fast_enable(PyObject *m, PyObject *flag);
int tokens_init(void);

#endif
