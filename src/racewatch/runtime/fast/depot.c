/* The depot of what accesses record about their context, each interned as a small id: the
 * set of locks held (a lockset), the stack (under history=full), and the pair of both. */
#include "fast.h"

/* One lock for all of it (a leaf): tuples are built before it is taken and released after,
 * and what is done under it (dict and list operations on tuples of ints, code objects and
 * line numbers) runs no Python code and releases no object of the program's. */
static Lock depot_lock;

/* Locksets: held ids are kept sorted, so equal sets give equal tuples. */
static PyObject *lockset_ids;      /* dict: tuple of sync ids -> int */
static PyObject *lockset_list;     /* list: id -> tuple */

/* The id of the set of sorted lock ids `ids`; -1 on error. */
int64_t intern_ids(const uint32_t *ids, uint32_t n) {
    PyObject *tuple = PyTuple_New(n);
    if (!tuple) return -1;
    for (uint32_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLong(ids[i]);
        if (!v) { Py_DECREF(tuple); return -1; }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    long value = -1;
    LOCK(&depot_lock);
    PyObject *id = PyDict_GetItemWithError(lockset_ids, tuple);
    if (id) {
        value = PyLong_AsLong(id);
    } else if (!PyErr_Occurred()) {
        PyObject *v = PyLong_FromSsize_t(PyList_GET_SIZE(lockset_list));
        if (v && PyDict_SetItem(lockset_ids, tuple, v) == 0 &&
            PyList_Append(lockset_list, tuple) == 0)
            value = PyList_GET_SIZE(lockset_list) - 1;
        Py_XDECREF(v);
    }
    UNLOCK(&depot_lock);
    Py_DECREF(tuple);
    return value;
}

int intern_lockset(ThreadState *t) {
    uint32_t small[16] = {0}, *ids = t->nheld <= 16 ? small : PyMem_RawMalloc(t->nheld * sizeof(uint32_t));
    if (!ids) { PyErr_NoMemory(); return -1; }
    for (uint32_t i = 0; i < t->nheld; i++) ids[i] = t->held[i].id;
    int64_t value = intern_ids(ids, t->nheld);
    if (ids != small) PyMem_RawFree(ids);
    if (value < 0) return -1;
    t->lockset = (uint32_t)value;
    return 0;
}

/* Stacks of previous accesses (history=full), interned. */
static PyObject *stack_ids;    /* dict: tuple of (code, line) pairs -> int */
static PyObject *stack_list;   /* list: id -> tuple */

uint32_t capture_stack(void) {
    PyObject *frames = PyList_New(0);
    if (!frames) return 0;
    PyFrameObject *frame = PyEval_GetFrame();
    Py_XINCREF(frame);
    while (frame) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *pair = Py_BuildValue("(Ni)", (PyObject *)code, PyFrame_GetLineNumber(frame));
        if (!pair || PyList_Append(frames, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(frame);
            Py_DECREF(frames);
            PyErr_Clear();
            return 0;
        }
        Py_DECREF(pair);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    PyObject *tuple = PyList_AsTuple(frames);
    Py_DECREF(frames);
    if (!tuple) { PyErr_Clear(); return 0; }
    long value = 0;
    LOCK(&depot_lock);
    PyObject *id = PyDict_GetItemWithError(stack_ids, tuple);
    if (id) {
        value = PyLong_AsLong(id);
    } else if (!PyErr_Occurred()) {
        PyObject *v = PyLong_FromSsize_t(PyList_GET_SIZE(stack_list));
        if (v && PyDict_SetItem(stack_ids, tuple, v) == 0 && PyList_Append(stack_list, tuple) == 0)
            value = PyList_GET_SIZE(stack_list) - 1;
        Py_XDECREF(v);
    }
    UNLOCK(&depot_lock);
    PyErr_Clear();
    Py_DECREF(tuple);
    return (uint32_t)value;
}

/* (lockset, stack) pairs as one small id per access: 0 is (no lock, no stack). */

static Map extra_ids;                 /* (lockset << 32 | stack) -> id */
static uint32_t *extra_lockset, *extra_stack;
static uint32_t nextra = 1, capextra;

uint32_t intern_extra(uint32_t lockset, uint32_t stack) {
    if (!lockset && !stack) return 0;
    uintptr_t key = (uintptr_t)((uint64_t)lockset << 32 | stack);
    uint32_t id = 0;   /* on failure the report lacks the lockset: never a wrong verdict */
    LOCK(&depot_lock);
    void *found = map_get(&extra_ids, key);
    if (found) {
        id = (uint32_t)(uintptr_t)found;
    } else {
        if (nextra >= capextra) {
            uint32_t cap = capextra ? capextra * 2 : 64;
            uint32_t *l = PyMem_RawRealloc(extra_lockset, cap * sizeof(uint32_t));
            if (l) extra_lockset = l;
            uint32_t *st = l ? PyMem_RawRealloc(extra_stack, cap * sizeof(uint32_t)) : NULL;
            if (st) {
                extra_stack = st;
                capextra = cap;
            }
        }
        if (nextra < capextra && map_put(&extra_ids, key, (void *)(uintptr_t)nextra) == 0) {
            extra_lockset[nextra] = lockset;
            extra_stack[nextra] = stack;
            id = nextra++;
        }
        PyErr_Clear();
    }
    UNLOCK(&depot_lock);
    return id;
}

/* The lockset and the stack of extra `id` (0, 0 for one not known). */
void extra_parts(uint32_t id, uint32_t *lockset, uint32_t *stack) {
    LOCK(&depot_lock);
    int known = id && id < nextra;
    *lockset = known ? extra_lockset[id] : 0;
    *stack = known ? extra_stack[id] : 0;
    UNLOCK(&depot_lock);
}

/* Whether the lockset of access context `extra` and lockset `locks` share a lock (both
 * tuples are sorted). Only ints are read under the depot's lock: no code runs. */
int extra_shares_lock(uint32_t extra, uint32_t locks) {
    if (!extra || !locks) return 0;
    int common = 0;
    LOCK(&depot_lock);
    uint32_t a = extra < nextra ? extra_lockset[extra] : 0;
    Py_ssize_t size = PyList_GET_SIZE(lockset_list);
    if (a && a == locks) {
        common = 1;
    } else if (a && a < size && locks < size) {
        PyObject *x = PyList_GET_ITEM(lockset_list, a), *y = PyList_GET_ITEM(lockset_list, locks);
        Py_ssize_t i = 0, j = 0, nx = PyTuple_GET_SIZE(x), ny = PyTuple_GET_SIZE(y);
        while (i < nx && j < ny && !common) {
            unsigned long u = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(x, i));
            unsigned long v = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(y, j));
            if (u == v) common = 1;
            else if (u < v) i++;
            else j++;
        }
    }
    UNLOCK(&depot_lock);
    return common;
}

static PyObject *tuple_at(PyObject *list, uint32_t id) {
    LOCK(&depot_lock);
    PyObject *t = id < (uint32_t)PyList_GET_SIZE(list) ? Py_NewRef(PyList_GET_ITEM(list, id))
                                                        : NULL;
    UNLOCK(&depot_lock);
    return t;
}

PyObject *lockset_tuple(uint32_t id) {
    PyObject *t = tuple_at(lockset_list, id);
    return t ? t : PyTuple_New(0);
}

PyObject *stack_tuple(uint32_t id) {
    PyObject *t = id ? tuple_at(stack_list, id) : NULL;
    return t ? t : Py_NewRef(Py_None);
}

void depot_after_fork(void) { memset(&depot_lock, 0, sizeof(depot_lock)); }

/* lockset 0 is the empty set; stack 0 means "not recorded" */
int depot_init(void) {
    lockset_ids = PyDict_New();
    lockset_list = PyList_New(0);
    stack_ids = PyDict_New();
    stack_list = PyList_New(0);
    if (!lockset_ids || !lockset_list || !stack_ids || !stack_list) return -1;
    PyObject *empty = PyTuple_New(0);
    PyObject *zero = PyLong_FromLong(0);
    int err = !empty || !zero || PyDict_SetItem(lockset_ids, empty, zero) < 0 ||
              PyList_Append(lockset_list, empty) < 0 || PyList_Append(stack_list, Py_None) < 0;
    Py_XDECREF(empty);
    Py_XDECREF(zero);
    return err ? -1 : 0;
}
