/* Where an access lands (runtime/locations.py is the reference): the locations one probe
 * stands for, from the object and key it sees: an instance's or a class's attribute, a
 * module's global, a container's key, index or shape. */
#include "fast.h"

static PyObject *getitem_name, *dict_getitem, *list_getitem;   /* set up at import */
static Lock cache_lock;   /* writers of kind_cache (a leaf) */

static inline unsigned int version_of(PyTypeObject *tp) { return LOAD(&tp->tp_version_tag); }

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
static struct { PyTypeObject *type; uint32_t seq; unsigned int version; int kind; }
    kind_cache[1 << KIND_CACHE_BITS];

int container_kind(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyDict_Type) return C_DICT;
    if (tp == &PyList_Type) return C_LIST;
    if (tp == &PySet_Type) return C_SET;
    if (tp == LOAD(&deque_type)) return C_DEQUE;
    if (tp == &PyByteArray_Type) return C_BYTEARRAY;
    /* a static type that is not a list or dict subclass (int, str, tuple...) is no container:
     * decided by its flags, since it may have no version tag to cache the answer under */
    if (!(tp->tp_flags & (Py_TPFLAGS_HEAPTYPE | Py_TPFLAGS_LIST_SUBCLASS |
                          Py_TPFLAGS_DICT_SUBCLASS)))
        return C_NONE;
    unsigned int version = version_of(tp);
    size_t i = (size_t)(((uint64_t)(uintptr_t)tp * 0x9E3779B97F4A7C15ull) >>
                        (64 - KIND_CACHE_BITS));
    uint32_t seq = LOAD_ACQ(&kind_cache[i].seq);   /* as attr_hit's */
    PyTypeObject *type = LOAD(&kind_cache[i].type);
    unsigned int cached = LOAD(&kind_cache[i].version);
    int kind = LOAD(&kind_cache[i].kind);
#ifdef RW_FREE_THREADED
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    int whole = !(seq & 1) && LOAD(&kind_cache[i].seq) == seq;
#else
    int whole = 1;
    (void)seq;
#endif
    if (version && whole && type == tp && cached == version) return kind;
    kind = type_kind(tp);
    if (version) {
        LOCK(&cache_lock);
        STORE(&kind_cache[i].seq, kind_cache[i].seq + 1);
#ifdef RW_FREE_THREADED
        __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
        STORE(&kind_cache[i].type, tp);
        STORE(&kind_cache[i].version, version);
        STORE(&kind_cache[i].kind, kind);
        STORE_REL(&kind_cache[i].seq, kind_cache[i].seq + 1);
        UNLOCK(&cache_lock);
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
PyObject *shape_owner(PyObject *obj) {
    if (is_dict_view(obj)) {
        PyObject *dict = NULL;
        Py_TYPE(obj)->tp_traverse(obj, find_dict, &dict);
        return dict;
    }
    return container_kind(obj) ? obj : NULL;
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
PyObject *super_lookup(PyObject *obj, PyObject *key) {
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

/* The owner of attribute `key` of `obj`, or NULL (no error) when it cannot race. For a
 * weakref.proxy, its referent's, which `*hold` keeps alive until the caller releases it. */
PyObject *attr_owner(PyObject *obj, PyObject *key, PyObject **hold) {
    if (PyWeakref_CheckProxy(obj) && !(obj = *hold = weak_target(obj))) return NULL;
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp == &PySuper_Type) return super_lookup(obj, key);
    if (PyModule_CheckExact(obj)) return PyModule_GetDict(obj);   /* attribute == global */
    if (no_attributes(tp)) return NULL;
    return obj;
}

int add_loc(Locs *ls, PyObject *owner, PyObject *key, int is_write, int atomic) {
    if (!owner || !key) return 0;
    if (ls->n == ls->cap) {   /* raw memory: no GC runs while the accesses are gathered */
        int cap = ls->cap * 2;
        Loc *a = PyMem_RawMalloc((size_t)cap * sizeof(Loc));
        if (!a) { PyErr_NoMemory(); return -1; }
        memcpy(a, ls->a, (size_t)ls->n * sizeof(Loc));
        if (ls->a != ls->small) PyMem_RawFree(ls->a);
        ls->a = a;
        ls->cap = cap;
    }
    Py_INCREF(owner);   /* held for the probe: making its record may run GC */
    Py_INCREF(key);
    ls->a[ls->n++] = (Loc){owner, key, is_write, atomic, 0, 0};
    return 0;
}

/* A read of every block of list-like `owner`, gathered as one entry: its keys are made as
 * each block is checked. (A million-item list read by 64 threads at once held 64 x 62,500
 * entries and as many new keys: 300 MB.) */
static int add_blocks(Locs *ls, PyObject *owner, Py_ssize_t blocks) {
    if (!blocks) return 0;
    if (add_loc(ls, owner, Py_None, 0, 0) < 0) return -1;
    Loc *l = &ls->a[ls->n - 1];
    Py_CLEAR(l->key);
    l->blocks = blocks;
    return 0;
}

void locs_clear(Locs *ls) {
    for (int i = 0; i < ls->n; i++) {
        Py_XDECREF(ls->a[i].key);
        Py_DECREF(ls->a[i].owner);
    }
    if (ls->a != ls->small) PyMem_RawFree(ls->a);
    locs_init(ls);
}

/* The length of a builtin container without calling a subclass's own __len__ (-1: unknown). */
Py_ssize_t builtin_len(PyObject *obj) {
    if (PyList_Check(obj)) return PyList_GET_SIZE(obj);
    if (PyByteArray_Check(obj)) return PyByteArray_GET_SIZE(obj);
    if (deque_type && PyObject_TypeCheck(obj, deque_type)) {   /* deque's own length slot */
        Py_ssize_t n = deque_type->tp_as_sequence->sq_length(obj);
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

/* A list-like's items come in blocks of BLOCK, each an "any item" location keyed by a
 * negative int (indices are not): -1 for items 0..15, -2 for 16..31... The first BLOCK_KEYS
 * keys are made once, so that the fast path finds their cells by address. */
static PyObject *block_keys[BLOCK_KEYS];   /* each published once, never replaced */

/* The key of block k: a new reference (NULL on error), from the table where it can be. */
PyObject *block_key_ref(Py_ssize_t k) {
    if (k >= BLOCK_KEYS) return PyLong_FromSsize_t(-(k + 1));
    PyObject *key = LOAD_ACQ(&block_keys[k]);
    if (key) return Py_NewRef(key);
    if (!(key = PyLong_FromSsize_t(-(k + 1)))) return NULL;
#ifdef RW_FREE_THREADED
    PyObject *expected = NULL;   /* another thread may publish it first: then that one */
    if (!__atomic_compare_exchange_n(&block_keys[k], &expected, key, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        Py_DECREF(key);
        key = expected;
    }
#else
    block_keys[k] = key;
#endif
    return Py_NewRef(key);
}

/* The made key of block k (borrowed), or NULL: for the fast path, which makes nothing. */
HOT PyObject *block_key(Py_ssize_t k) {
    return k < BLOCK_KEYS ? LOAD_ACQ(&block_keys[k]) : NULL;
}

static int add_block(Locs *ls, PyObject *obj, Py_ssize_t index, int is_write, int atomic) {
    PyObject *key = block_key_ref(index / BLOCK);
    if (!key) return -1;
    int err = add_loc(ls, obj, key, is_write, atomic);
    Py_DECREF(key);
    return err;
}

static int add_index(Locs *ls, PyObject *obj, Py_ssize_t index, int is_write) {
    PyObject *key = PyLong_FromSsize_t(index);
    if (!key) return -1;
    int err = add_loc(ls, obj, key, is_write, 0);
    Py_DECREF(key);
    return err;
}

/* A list-like: one whose items come in blocks (list, deque, bytearray). */
static inline int sequence_kind(int kind) {
    return kind == C_LIST || kind == C_DEQUE || kind == C_BYTEARRAY;
}

/* Reading all of a container's elements at once (iterating it, sum(), list(), a + b...): its
 * shape, and its items: a list-like's blocks, a dict's values where they are what is read (a
 * values or items view; `values`), nothing more for keys and sets. */
int bulk_locs(PyObject *obj, int values, Locs *ls) {
    if (is_dict_view(obj)) {
        PyObject *dict = shape_owner(obj);
        PyTypeObject *tp = Py_TYPE(obj);
        int keys = tp == &PyDictKeys_Type || tp->tp_base == &PyDictKeys_Type;
        if (add_loc(ls, dict, shape_key, 0, 0) < 0) return -1;
        return keys ? 0 : add_loc(ls, dict, items_key, 0, 0);
    }
    int kind = container_kind(obj);
    if (kind == C_NONE) return 0;
    if (add_loc(ls, obj, shape_key, 0, 0) < 0) return -1;
    if (kind == C_DICT && values) return add_loc(ls, obj, items_key, 0, 0);
    if (!sequence_kind(kind)) return 0;
    Py_ssize_t len = builtin_len(obj);
    return add_blocks(ls, obj, len > 0 ? (len + BLOCK - 1) / BLOCK : 0);
}

static int plain_bound(PyObject *b) { return b == Py_None || PyLong_CheckExact(b); }

/* A slice read or assignment: the shape, and the items it covers. A read covers them all: the
 * blocks it covers whole, the others one by one; an assignment its first SLICE_ITEMS.
 * `bounds` is a slice (3.11) or the (start, stop) pair 3.12+ probes pass. Only int bounds
 * are looked at: others would mean calling __index__. */
static int slice_locs(PyObject *obj, PyObject *bounds, int is_write, Locs *ls) {
    if (add_loc(ls, obj, shape_key, is_write, 0) < 0) return -1;
    PyObject *start, *stop, *step = Py_None;
    if (PySlice_Check(bounds)) {
        start = ((PySliceObject *)bounds)->start;
        stop = ((PySliceObject *)bounds)->stop;
        step = ((PySliceObject *)bounds)->step;
    } else if (PyTuple_CheckExact(bounds) && PyTuple_GET_SIZE(bounds) == 2) {
        start = PyTuple_GET_ITEM(bounds, 0);
        stop = PyTuple_GET_ITEM(bounds, 1);
    } else {
        return 0;
    }
    if (!plain_bound(start) || !plain_bound(stop) || !plain_bound(step)) return 0;
    PyObject *slice = PySlice_New(start, stop, step);
    Py_ssize_t len = builtin_len(obj), first, last, by;
    if (!slice || len < 0 || PySlice_Unpack(slice, &first, &last, &by) < 0) {
        Py_XDECREF(slice);
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(slice);
    Py_ssize_t count = PySlice_AdjustIndices(len, &first, &last, by);
    if (is_write || by != 1) {
        for (Py_ssize_t i = 0; i < count && (!is_write || i < SLICE_ITEMS); i++)
            if (add_index(ls, obj, first + i * by, is_write) < 0) return -1;
        return 0;
    }
    for (Py_ssize_t i = first, end = first + count; i < end;) {
        int whole = i % BLOCK == 0 && i + BLOCK <= end;
        if ((whole ? add_block(ls, obj, i, 0, 0) : add_index(ls, obj, i, 0)) < 0) return -1;
        i += whole ? BLOCK : 1;
    }
    return 0;
}

static int item_locs(PyObject *obj, PyObject *key, int is_write, int delete, Locs *ls) {
    int kind = container_kind(obj);
    if (kind == C_NONE || kind == C_SET) return 0;
    if (PySlice_Check(key)) return kind == C_DICT ? 0 : slice_locs(obj, key, is_write, ls);
    if (kind == C_DICT) {
        PyObject *owner = PyUnicode_CheckExact(key) ? alias_owner(obj) : NULL;
        if (owner) {   /* obj.k */
            int err = add_loc(ls, owner, key, is_write || delete, 0);
            Py_DECREF(owner);
            return err;
        }
        if (add_loc(ls, obj, key, is_write, 0) < 0) return -1;
        if (delete) {   /* the dict lets go of the key: so does its cell */
            if (ls->n) ls->a[ls->n - 1].release = 1;
            return add_loc(ls, obj, shape_key, 1, 0);
        }
        if (safe_key(key, 0)) {   /* only then is the membership test free of user code */
            int present = PyDict_Contains(obj, key);
            if (present < 0) {
                PyErr_Clear();
            } else if (!present && (is_write || (defaultdict_type &&
                                                 PyObject_TypeCheck(obj, defaultdict_type)))) {
                /* a new key changes the shape, atomically for `D[x] = y` (documented
                 * atomic); a defaultdict's __missing__ inserts on a read, running the
                 * factory in between */
                if (add_loc(ls, obj, shape_key, 1, is_write) < 0) return -1;
            }
        }
        /* a value changes: bulk reads of the values see it */
        return is_write ? add_loc(ls, obj, items_key, 1, 1) : 0;
    }
    PyObject *index = normal_index(obj, key);
    if (!index) return 0;
    Py_ssize_t i = PyLong_AsSsize_t(index);
    int err = add_loc(ls, obj, index, is_write || delete, 0);
    Py_DECREF(index);
    if (err < 0) return -1;
    if (delete) return add_loc(ls, obj, shape_key, 1, 0);
    if (i < 0) { PyErr_Clear(); return 0; }
    return is_write ? add_block(ls, obj, i, 1, 1) : 0;   /* its block, atomically */
}

/* `left + right` of two list-likes reads both in bulk; `left += right` extends a list-like
 * left (an atomic write of its shape, as `extend` is) with everything right holds. Other
 * operands run their own code, or raise. */
static int concat_locs(PyObject *left, PyObject *right, int inplace, Locs *ls) {
    if (!sequence_kind(container_kind(left))) return 0;
    if (inplace)
        return add_loc(ls, left, shape_key, 1, 1) < 0 ? -1 : bulk_locs(right, 0, ls);
    if (bulk_locs(left, 0, ls) < 0) return -1;
    return sequence_kind(container_kind(right)) ? bulk_locs(right, 0, ls) : 0;
}

/* The accesses one probe stands for, as new references in `ls`; -1 on error. */
int resolve(PyObject *obj, PyObject *key, uint8_t kind, int is_write, Locs *ls) {
    switch (kind) {
    case K_ATTR: return attr_locs(obj, key, is_write, ls);
    case K_SUPER: return add_loc(ls, super_lookup(obj, key), key, 0, 0);
    case K_GLOBAL: return add_loc(ls, PyEval_GetGlobals(), key, is_write, 0);
    case K_METHOD_READ: case K_METHOD_WRITE: case K_METHOD_ATOMIC_READ:
    case K_METHOD_ATOMIC_WRITE:
        if (container_kind(obj))
            return add_loc(ls, obj, shape_key,
                           kind == K_METHOD_WRITE || kind == K_METHOD_ATOMIC_WRITE,
                           kind == K_METHOD_ATOMIC_READ || kind == K_METHOD_ATOMIC_WRITE);
        return attr_locs(obj, key, 0, ls);
    case K_ITEM: return item_locs(obj, key, is_write, 0, ls);
    case K_ITEM_DELETE: return item_locs(obj, key, 1, 1, ls);
    case K_SLICE: {
        int kind = container_kind(obj);
        return kind == C_NONE || kind == C_DICT ? 0 : slice_locs(obj, key, is_write, ls);
    }
    case K_ITER: return bulk_locs(obj, 0, ls);
    case K_CONCAT: return concat_locs(obj, key, is_write, ls);
    case K_CONTAINS:
        if (container_kind(obj) == C_DICT) {
            PyObject *owner = PyUnicode_CheckExact(key) ? alias_owner(obj) : NULL;
            int err = add_loc(ls, owner ? owner : obj, key, 0, 0);
            Py_XDECREF(owner);
            return err;
        }
        return add_loc(ls, shape_owner(obj), shape_key, 0, 0);
    case K_EQ:
        if (!eq_reads(obj, key)) return 0;
        if (add_loc(ls, shape_owner(obj), shape_key, 0, 0) < 0) return -1;
        return add_loc(ls, shape_owner(key), shape_key, 0, 0);
    case K_ATOMIC: return add_loc(ls, obj, key, is_write, 1);
    default: return add_loc(ls, obj, key, is_write, 0);   /* CELL, unregistered sites */
    }
}

/* The builtin container an exact type is (its instances need no further test), or C_NONE. */
HOT int exact_container(PyTypeObject *tp) {
    if (tp == &PyList_Type) return C_LIST;
    if (tp == &PyDict_Type) return C_DICT;
    if (tp == &PySet_Type) return C_SET;
    if (tp == LOAD(&deque_type)) return C_DEQUE;
    if (tp == &PyByteArray_Type) return C_BYTEARRAY;
    return C_NONE;
}

/* Whether a comparison operand may read a shape: a container or a dict view. The scalar types
 * most comparisons see are answered first, by pointer. */
HOT int maybe_container(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyFloat_Type ||
        tp == &PyBool_Type || o == Py_None)
        return 0;
    return is_dict_view(o) || container_kind(o);
}

/* The family of builtin comparison an operand takes part in. A builtin container's `==`
 * reads its shape and items only against an operand of its own family (a list with a list, a
 * set or a dict's keys/items view with any set or such view, a bytearray with any buffer);
 * against anything else it returns NotImplemented without looking, and the other operand's
 * own __eq__, if it has one, reads what it reads through its own probes. */
enum { EQ_NONE, EQ_LIST, EQ_DICT, EQ_SET, EQ_DEQUE, EQ_BYTES };

static int eq_family(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    if (is_dict_view(o))   /* a values view compares by identity */
        return tp == &PyDictValues_Type || tp->tp_base == &PyDictValues_Type ? EQ_NONE : EQ_SET;
    if (PyList_Check(o)) return EQ_LIST;
    if (PyDict_Check(o)) return EQ_DICT;
    if (PyAnySet_Check(o)) return EQ_SET;
    PyTypeObject *deque = LOAD(&deque_type);
    if (deque && PyType_IsSubtype(tp, deque)) return EQ_DEQUE;
    if (PyObject_CheckBuffer(o)) return EQ_BYTES;
    return EQ_NONE;
}

/* Whether `a == b` (or `!=`) reads a container's shape: one operand is a container (or a dict
 * view) and the other of its comparison family. */
HOT int eq_reads(PyObject *a, PyObject *b) {
    if (!maybe_container(a) && !maybe_container(b)) return 0;
    int family = eq_family(a);
    return family != EQ_NONE && family == eq_family(b);
}

/* Whether a concatenation operand may be a list-like; numbers and strings first, by pointer. */
HOT int maybe_sequence(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyList_Type || tp == &PyByteArray_Type || tp == LOAD(&deque_type)) return 1;
    if (tp == &PyLong_Type || tp == &PyFloat_Type || tp == &PyUnicode_Type ||
        tp == &PyBytes_Type || tp == &PyTuple_Type || !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE))
        return 0;
    return sequence_kind(container_kind(o));
}

int locations_init(void) {
    getitem_name = PyUnicode_InternFromString("__getitem__");
    dict_getitem = getitem_name ? _PyType_Lookup(&PyDict_Type, getitem_name) : NULL;
    list_getitem = getitem_name ? _PyType_Lookup(&PyList_Type, getitem_name) : NULL;
    Py_XINCREF(dict_getitem);
    Py_XINCREF(list_getitem);
    return dict_getitem && list_getitem ? 0 : -1;
}
