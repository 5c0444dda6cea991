/* Coverage counters: one uint64 per site id, bumped by the line probes of instrumented code.
 *
 * Counters live in fixed chunks that never move, so growing the table (a module registers its
 * sites) never invalidates a pointer another thread is about to bump, and snapshots taken while
 * threads run read each counter with an atomic load (Go #56006).
 *
 *   hit_set(site)     counter = 1 (idempotent: exact under any threading)
 *   hit_count(site)   counter += 1, a plain increment (exact under the GIL only, as Go's `count`)
 *   hit_atomic(site)  atomic fetch-add (exact under any threading, with or without a GIL)
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE ((Py_ssize_t)1 << CHUNK_BITS)
#define MAX_CHUNKS ((Py_ssize_t)1 << 16) /* 268 million sites */

#if defined(_MSC_VER)
#include <intrin.h>
#define ATOMIC_ADD(p) _InterlockedIncrement64((volatile __int64 *)(p))
#define ATOMIC_STORE_ONE(p) _InterlockedExchange64((volatile __int64 *)(p), 1)
#define ATOMIC_LOAD(p) ((uint64_t)_InterlockedOr64((volatile __int64 *)(p), 0))
#else
#define ATOMIC_ADD(p) __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#define ATOMIC_STORE_ONE(p) __atomic_store_n((p), 1, __ATOMIC_RELAXED)
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#endif

static uint64_t *chunks[MAX_CHUNKS];
static Py_ssize_t capacity = 0; /* counters allocated: a multiple of CHUNK_SIZE */

/* The counter of a site id, or NULL for an id no module registered (never raises: a probe
 * must not throw inside the code it measures). */
static inline uint64_t *
slot(PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i < 0 || i >= capacity) {
        if (i == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        return NULL;
    }
    return &chunks[i >> CHUNK_BITS][i & (CHUNK_SIZE - 1)];
}

static PyObject *
hit_set(PyObject *module, PyObject *arg)
{
    uint64_t *counter = slot(arg);
    if (counter != NULL) {
        ATOMIC_STORE_ONE(counter);
    }
    Py_RETURN_NONE;
}

static PyObject *
hit_count(PyObject *module, PyObject *arg)
{
    uint64_t *counter = slot(arg);
    if (counter != NULL) {
        (*counter)++;
    }
    Py_RETURN_NONE;
}

static PyObject *
hit_atomic(PyObject *module, PyObject *arg)
{
    uint64_t *counter = slot(arg);
    if (counter != NULL) {
        ATOMIC_ADD(counter);
    }
    Py_RETURN_NONE;
}

static PyObject *
reserve(PyObject *module, PyObject *arg)
{
    Py_ssize_t wanted = PyLong_AsSsize_t(arg);
    if (wanted == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (wanted > MAX_CHUNKS * CHUNK_SIZE) {
        PyErr_SetString(PyExc_OverflowError, "too many coverage sites");
        return NULL;
    }
    while (capacity < wanted) {
        uint64_t *chunk = PyMem_RawCalloc(CHUNK_SIZE, sizeof(uint64_t));
        if (chunk == NULL) {
            return PyErr_NoMemory();
        }
        chunks[capacity >> CHUNK_BITS] = chunk;
        /* the chunk is in place before any probe may see it in range */
#if defined(_MSC_VER)
        capacity += CHUNK_SIZE;
#else
        __atomic_store_n(&capacity, capacity + CHUNK_SIZE, __ATOMIC_RELEASE);
#endif
    }
    return PyLong_FromSsize_t(capacity);
}

static PyObject *
counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "counts(start, stop)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[0]);
    Py_ssize_t stop = PyLong_AsSsize_t(args[1]);
    if ((start == -1 || stop == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "bad counter range");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (stop - start) * (Py_ssize_t)sizeof(uint64_t));
    if (out == NULL) {
        return NULL;
    }
    uint64_t *dest = (uint64_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = start; i < stop; i++) {
        dest[i - start] = i < capacity ? ATOMIC_LOAD(&chunks[i >> CHUNK_BITS][i & (CHUNK_SIZE - 1)])
                                       : 0;
    }
    return out;
}

static PyObject *
reset(PyObject *module, PyObject *unused)
{
    for (Py_ssize_t c = 0; c < (capacity >> CHUNK_BITS); c++) {
        memset(chunks[c], 0, CHUNK_SIZE * sizeof(uint64_t));
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"hit_set", hit_set, METH_O, "hit_set(site): mark the site's line as run."},
    {"hit_count", hit_count, METH_O, "hit_count(site): count a run (plain increment)."},
    {"hit_atomic", hit_atomic, METH_O, "hit_atomic(site): count a run (atomic increment)."},
    {"reserve", reserve, METH_O, "reserve(n): make site ids below n countable; the capacity."},
    {"counts", (PyCFunction)(void (*)(void))counts, METH_FASTCALL,
     "counts(start, stop): the counters of site ids in [start, stop) as native uint64 bytes."},
    {"reset", reset, METH_NOARGS, "reset(): zero every counter (a fork child starts afresh)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "racewatch.cover._counters",
    "Coverage counters in C: one uint64 per site id, set / count / atomic probes.", -1, methods,
};

PyMODINIT_FUNC
PyInit__counters(void)
{
    return PyModule_Create(&module);
}
