/* The depot of what accesses record about their context, each interned as a small id: the
 * set of locks held (a lockset), the stack (under history=full), and the pair of both. */
#include "fast.h"

/* Locksets: held ids are kept sorted, so equal sets give equal tuples. */
static PyObject *lockset_ids;      /* dict: tuple of sync ids -> int */
PyObject *lockset_list;     /* list: id -> tuple */

/* The id of the set of sorted lock ids `ids`; -1 on error. */
int64_t intern_ids(const uint32_t *ids, uint32_t n) {
    PyObject *tuple = PyTuple_New(n);
    if (!tuple) return -1;
    for (uint32_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLong(ids[i]);
        if (!v) { Py_DECREF(tuple); return -1; }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    PyObject *id = PyDict_GetItemWithError(lockset_ids, tuple);
    long value;
    if (id) {
        value = PyLong_AsLong(id);
    } else {
        if (PyErr_Occurred()) { Py_DECREF(tuple); return -1; }
        value = PyList_GET_SIZE(lockset_list);
        PyObject *v = PyLong_FromLong(value);
        if (!v || PyDict_SetItem(lockset_ids, tuple, v) < 0 ||
            PyList_Append(lockset_list, tuple) < 0) {
            Py_XDECREF(v);
            Py_DECREF(tuple);
            return -1;
        }
        Py_DECREF(v);
    }
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

/* Whether two locksets share a lock (both tuples are sorted). */
int locksets_overlap(uint32_t a, uint32_t b) {
    if (!a || !b) return 0;
    if (a == b) return 1;
    PyObject *x = PyList_GET_ITEM(lockset_list, a), *y = PyList_GET_ITEM(lockset_list, b);
    Py_ssize_t i = 0, j = 0, nx = PyTuple_GET_SIZE(x), ny = PyTuple_GET_SIZE(y);
    while (i < nx && j < ny) {
        unsigned long u = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(x, i));
        unsigned long v = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(y, j));
        if (u == v) return 1;
        if (u < v) i++; else j++;
    }
    return 0;
}

/* Stacks of previous accesses (history=full), interned. */
static PyObject *stack_ids;    /* dict: tuple of (code, line) pairs -> int */
PyObject *stack_list;   /* list: id -> tuple */

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
    PyObject *id = PyDict_GetItemWithError(stack_ids, tuple);
    long value = 0;
    if (id) {
        value = PyLong_AsLong(id);
    } else if (!PyErr_Occurred()) {
        value = PyList_GET_SIZE(stack_list);
        PyObject *v = PyLong_FromLong(value);
        if (!v || PyDict_SetItem(stack_ids, tuple, v) < 0 || PyList_Append(stack_list, tuple) < 0)
            value = 0;
        Py_XDECREF(v);
    }
    PyErr_Clear();
    Py_DECREF(tuple);
    return (uint32_t)value;
}

/* (lockset, stack) pairs as one small id per access: 0 is (no lock, no stack). */

static Map extra_ids;                 /* (lockset << 32 | stack) -> id */
uint32_t *extra_lockset, *extra_stack;
uint32_t nextra = 1;
static uint32_t capextra;

uint32_t intern_extra(uint32_t lockset, uint32_t stack) {
    if (!lockset && !stack) return 0;
    uintptr_t key = (uintptr_t)((uint64_t)lockset << 32 | stack);
    void *found = map_get(&extra_ids, key);
    if (found) return (uint32_t)(uintptr_t)found;
    if (nextra >= capextra) {
        uint32_t cap = capextra ? capextra * 2 : 64;
        uint32_t *l = PyMem_RawRealloc(extra_lockset, cap * sizeof(uint32_t));
        if (!l) return 0;   /* out of memory: the access records no lockset */
        extra_lockset = l;
        uint32_t *st = PyMem_RawRealloc(extra_stack, cap * sizeof(uint32_t));
        if (!st) return 0;
        extra_stack = st;
        capextra = cap;
    }
    if (map_put(&extra_ids, key, (void *)(uintptr_t)nextra) < 0) { PyErr_Clear(); return 0; }
    extra_lockset[nextra] = lockset;
    extra_stack[nextra] = stack;
    return nextra++;
}

PyObject *lockset_tuple(uint32_t id) {
    if (id < (uint32_t)PyList_GET_SIZE(lockset_list)) {
        PyObject *t = PyList_GET_ITEM(lockset_list, id);
        Py_INCREF(t);
        return t;
    }
    return PyTuple_New(0);
}

PyObject *stack_tuple(uint32_t id) {
    if (id && id < (uint32_t)PyList_GET_SIZE(stack_list)) {
        PyObject *t = PyList_GET_ITEM(stack_list, id);
        Py_INCREF(t);
        return t;
    }
    Py_RETURN_NONE;
}

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
