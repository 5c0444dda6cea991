/* Coverage counters: one uint64 per site id, bumped by the line probes of instrumented code.
 *
 * Counters live in fixed chunks that never move, so growing the table (a module registers its
 * sites) never invalidates a pointer another thread is about to bump, and snapshots taken while
 * threads run read each counter with an atomic load (Go #56006).
 *
 *   hit_set(site)     counter = 1 (idempotent: exact under any threading)
 *   hit_count(site)   counter += 1, a plain increment (exact under the GIL only, as Go's `count`)
 *   hit_atomic(site)  counter += 1, exact under any threading, with or without a GIL
 *
 * All of them count through rw_bump (_counters_api.h), which says how `atomic` stays exact with
 * and without a GIL. Line probes use hit tokens (below), which do the same from a type slot, and
 * the race runtime's merged probes count through the capsule at the end.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE ((Py_ssize_t)1 << CHUNK_BITS)
#define MAX_CHUNKS ((Py_ssize_t)1 << 16) /* 268 million sites */

#include "_counters_api.h"

#if defined(_MSC_VER)
#define ATOMIC_LOAD(p) ((uint64_t)_InterlockedOr64((volatile __int64 *)(p), 0))
#else
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#endif

static uint64_t *chunks[MAX_CHUNKS];
static Py_ssize_t capacity = 0; /* counters allocated: a multiple of CHUNK_SIZE */

/* Without a GIL, two threads importing modules may grow the table at once. */
#ifdef Py_GIL_DISABLED
static PyMutex growing;
#define GROW_LOCK() PyMutex_Lock(&growing)
#define GROW_UNLOCK() PyMutex_Unlock(&growing)
#else
#define GROW_LOCK()
#define GROW_UNLOCK()
#endif

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

enum { MODE_SET = RW_MODE_SET, MODE_COUNT = RW_MODE_COUNT, MODE_ATOMIC = RW_MODE_ATOMIC };

static PyObject *
hit(PyObject *arg, int mode)
{
    uint64_t *counter = slot(arg);
    if (counter != NULL) {
        rw_bump(counter, mode);
    }
    Py_RETURN_NONE;
}

static PyObject *
hit_set(PyObject *module, PyObject *arg)
{
    return hit(arg, MODE_SET);
}

static PyObject *
hit_count(PyObject *module, PyObject *arg)
{
    return hit(arg, MODE_COUNT);
}

static PyObject *
hit_atomic(PyObject *module, PyObject *arg)
{
    return hit(arg, MODE_ATOMIC);
}

/* Hit tokens: the line probe `~token` (LOAD_CONST token; UNARY_INVERT; POP_TOP) runs the
 * token type's nb_invert straight from the eval loop, without a call sequence: about half a
 * called probe's cost, the bulk of what counting adds to a line.
 *
 * A token keeps its site id and the address of its counter, found once when it is made: the
 * probe then costs one load and the add (measured with cachegrind: 10 instructions instead of
 * 20, on code that runs a probe every few dozen). The address stays valid: chunks never move
 * or go away, a reset zeroes them in place. A token made before its site had a counter (an id
 * beyond the table) looks again at each run and counts nothing until the table has grown to it.
 * One type per mode, so that the slot is the mode's add alone, without a switch. */

typedef struct {
    PyObject_HEAD
    uint64_t *counter; /* NULL until the site has a counter */
    Py_ssize_t site;
} HitToken;

static int tokens_enabled = 1; /* 0 once racewatch stops: tokens already loaded do nothing */

static uint64_t *
site_counter(Py_ssize_t i)
{
#if defined(_MSC_VER)
    Py_ssize_t known = capacity;
#else
    Py_ssize_t known = __atomic_load_n(&capacity, __ATOMIC_ACQUIRE); /* pairs with reserve */
#endif
    return i < known ? &chunks[i >> CHUNK_BITS][i & (CHUNK_SIZE - 1)] : NULL;
}

/* A relaxed load: late_counter may store the address from another thread (a mov on x86). */
#if defined(_MSC_VER)
#define LOAD_COUNTER(token) ((token)->counter)
#else
#define LOAD_COUNTER(token) __atomic_load_n(&(token)->counter, __ATOMIC_RELAXED)
#endif

/* The rare path: the token's site had no counter when it was made. */
static uint64_t *
late_counter(HitToken *token)
{
    uint64_t *counter = site_counter(token->site);
    if (counter != NULL) {
        /* every thread that races here stores the same address */
#if defined(_MSC_VER)
        token->counter = counter;
#else
        __atomic_store_n(&token->counter, counter, __ATOMIC_RELAXED);
#endif
    }
    return counter;
}

#define HIT_TOKEN_INVERT(NAME, MODE)                                    \
    static PyObject *                                                   \
    NAME(PyObject *self)                                                \
    {                                                                   \
        HitToken *token = (HitToken *)self;                             \
        uint64_t *counter = LOAD_COUNTER(token);                        \
        if (counter == NULL) {                                          \
            counter = late_counter(token);                              \
        }                                                               \
        if (rw_enabled(&tokens_enabled) && counter != NULL) {           \
            rw_bump(counter, MODE);                                     \
        }                                                               \
        Py_RETURN_NONE;                                                 \
    }

HIT_TOKEN_INVERT(hit_token_invert_set, MODE_SET)
HIT_TOKEN_INVERT(hit_token_invert_count, MODE_COUNT)
HIT_TOKEN_INVERT(hit_token_invert_atomic, MODE_ATOMIC)

static PyObject *
hit_token_reduce(PyObject *self, PyObject *unused)
{
    /* a site id means nothing in another process: an inert token there */
    PyObject *null = PyImport_ImportModule("racewatch.runtime.null");
    if (null == NULL) {
        return NULL;
    }
    PyObject *cls = PyObject_GetAttrString(null, "Token");
    Py_DECREF(null);
    if (cls == NULL) {
        return NULL;
    }
    return Py_BuildValue("(N())", cls);
}

static PyObject *
hit_token_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<racewatch line probe %zd>", ((HitToken *)self)->site);
}

static PyMemberDef hit_token_members[] = {
    {"site", T_PYSSIZET, offsetof(HitToken, site), READONLY, "the site id this token counts"},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef hit_token_methods[] = {
    {"__reduce__", hit_token_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyNumberMethods hit_token_number[] = {
    [MODE_SET] = {.nb_invert = hit_token_invert_set},
    [MODE_COUNT] = {.nb_invert = hit_token_invert_count},
    [MODE_ATOMIC] = {.nb_invert = hit_token_invert_atomic},
};

#define HIT_TOKEN_TYPE(MODE)                                                    \
    {                                                                           \
        PyVarObject_HEAD_INIT(NULL, 0)                                          \
        .tp_name = "racewatch.cover._counters.HitToken",                        \
        .tp_basicsize = sizeof(HitToken),                                       \
        .tp_flags = Py_TPFLAGS_DEFAULT,                                         \
        .tp_doc = "A line probe's constant: ~token counts a run of its line.",  \
        .tp_as_number = &hit_token_number[MODE],                                \
        .tp_methods = hit_token_methods,                                        \
        .tp_members = hit_token_members,                                        \
        .tp_repr = hit_token_repr,                                              \
    }

static PyTypeObject hit_token_types[] = {
    [MODE_SET] = HIT_TOKEN_TYPE(MODE_SET),
    [MODE_COUNT] = HIT_TOKEN_TYPE(MODE_COUNT),
    [MODE_ATOMIC] = HIT_TOKEN_TYPE(MODE_ATOMIC),
};

static PyObject *
hit_token(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const modes[] = {"set", "count", "atomic"};
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "hit_token(site, mode)");
        return NULL;
    }
    Py_ssize_t site = PyLong_AsSsize_t(args[0]);
    if (site == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int mode = -1;
    for (int m = 0; m < 3; m++) {
        if (PyUnicode_CompareWithASCIIString(args[1], modes[m]) == 0) {
            mode = m;
        }
    }
    if (site < 0 || mode < 0) {
        PyErr_SetString(PyExc_ValueError, "hit_token: bad site or mode");
        return NULL;
    }
    HitToken *token = PyObject_New(HitToken, &hit_token_types[mode]);
    if (token == NULL) {
        return NULL;
    }
    token->site = site;
    token->counter = site_counter(site);
    return (PyObject *)token;
}

/* For the capsule: a merged probe's counter, found once when its race token is made. */
static uint64_t *
counter_of(PyObject *hit, int *mode)
{
    for (int m = MODE_SET; m <= MODE_ATOMIC; m++) {
        if (Py_IS_TYPE(hit, &hit_token_types[m])) {
            *mode = m;
            HitToken *token = (HitToken *)hit;
            uint64_t *counter = LOAD_COUNTER(token);
            return counter != NULL ? counter : late_counter(token);
        }
    }
    return NULL;
}

static const RwCountersApi api = {&tokens_enabled, counter_of};

static PyObject *
enable(PyObject *module, PyObject *arg)
{
    int flag = PyObject_IsTrue(arg);
    if (flag < 0) {
        return NULL;
    }
    rw_set_enabled(&tokens_enabled, flag);
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
    GROW_LOCK();
    while (capacity < wanted) {
        uint64_t *chunk = PyMem_RawCalloc(CHUNK_SIZE, sizeof(uint64_t));
        if (chunk == NULL) {
            GROW_UNLOCK();
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
    Py_ssize_t now = capacity;
    GROW_UNLOCK();
    return PyLong_FromSsize_t(now);
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

/* The counters, and where every thread's frames are, read in one go: no other thread runs in
 * between (the GIL is held, no bytecode runs, collections that could run finalizers are off),
 * so a chained line's count and the frames still on their way to it agree (rewriter/chains.py).
 * A frame's place is read here, not later: a running thread's frame moves on. Without a GIL,
 * threads still running (daemons, at exit) may move on between the two reads. */
static PyObject *
snapshot(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int collecting = PyGC_Disable();
    PyObject *out = NULL, *frames = NULL, *places = NULL;
    PyObject *current_frames = PySys_GetObject("_current_frames"); /* borrowed */
    if (current_frames == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sys._current_frames is missing");
        goto done;
    }
    frames = PyObject_CallNoArgs(current_frames);
    PyObject *values = frames == NULL ? NULL : counts(module, args, nargs);
    places = values == NULL ? NULL : PyList_New(0);
    if (places == NULL) {
        Py_XDECREF(values);
        goto done;
    }
    PyObject *key, *top;
    Py_ssize_t pos = 0;
    while (PyDict_Next(frames, &pos, &key, &top)) {
        PyFrameObject *frame = (PyFrameObject *)Py_NewRef(top);
        while (frame != NULL) {
            PyObject *place = Py_BuildValue("(Ni)", PyFrame_GetCode(frame),
                                            PyFrame_GetLasti(frame));
            PyFrameObject *back = PyFrame_GetBack(frame);
            Py_DECREF(frame);
            frame = back;
            if (place == NULL || PyList_Append(places, place) < 0) {
                Py_XDECREF(place);
                Py_XDECREF(frame);
                Py_DECREF(values);
                goto done;
            }
            Py_DECREF(place);
        }
    }
    out = PyTuple_Pack(2, values, places);
    Py_DECREF(values);
done:
    Py_XDECREF(frames);
    Py_XDECREF(places);
    if (collecting) {
        PyGC_Enable();
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

#ifndef _WIN32
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

/* SIGTERM, caught in C (Python's view of it stays SIG_DFL): the coverage files are written by a
 * Python-level handler of a helper signal, in the main thread, which then dies of SIGTERM. The
 * program's code stops there at once, as it would die at once without racewatch; no thread of
 * racewatch's waits for the signal (a single-threaded program stays single-threaded, which
 * os.fork's warning counts). A handler runs only when the main thread next executes bytecode,
 * and a signal that lands just before it blocks in C (sem_wait) would leave it blocked: so a
 * timer sends the helper signal to the main thread every 20 ms, each interrupting its system
 * call, until the handler has begun; after 2 s without it, the process dies of SIGTERM with its
 * coverage unwritten, rather than hang. */
static volatile sig_atomic_t helper_signum = 0;
static volatile pid_t sigterm_pid = 0; /* a fork child before re-arming must not wake its parent */
static volatile sig_atomic_t wakeups = 0;
#ifdef __linux__
static timer_t wake_timer;
static volatile sig_atomic_t have_timer = 0;
#endif
#define WAKE_EVERY_NS 20000000L
#define WAKEUPS_BEFORE_GIVING_UP 100

static void
die_now(void)
{
    signal(SIGTERM, SIG_DFL);
    kill(getpid(), SIGTERM); /* delivered when this handler returns: death, as by default */
}

static void
arm(long value_ns, long interval_ns)
{
#ifdef __linux__
    if (have_timer) {
        struct itimerspec when = {{0, interval_ns}, {0, value_ns}};
        timer_settime(wake_timer, 0, &when, NULL);
    }
#endif
}

static void
on_sigterm(int signum)
{
    int saved = errno;
    if (getpid() != sigterm_pid) {
        die_now();
    }
    else if (helper_signum) {
        PyErr_SetInterruptEx(helper_signum); /* the handler runs at the next bytecode */
        arm(1, WAKE_EVERY_NS);                /* and the main thread is woken if it blocks */
    }
    errno = saved;
}

static void
on_helper(int signum)
{
    int saved = errno;
    if (getpid() != sigterm_pid) {
        /* nothing: a fork child has no timer of its parent's */
    }
    else if (++wakeups > WAKEUPS_BEFORE_GIVING_UP) {
        arm(0, 0);
        die_now();
    }
    else {
        PyErr_SetInterruptEx(signum); /* Python's handler of the helper signal */
    }
    errno = saved;
}

static PyObject *
catch_sigterm(PyObject *module, PyObject *arg)
{
    long helper = PyLong_AsLong(arg);
    if (helper == -1 && PyErr_Occurred()) {
        return NULL;
    }
    struct sigaction current;
    if (sigaction(SIGTERM, NULL, &current) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (current.sa_handler != SIG_DFL && current.sa_handler != on_sigterm) {
        Py_RETURN_FALSE; /* the program's own choice stands */
    }
    helper_signum = (int)helper;
    sigterm_pid = getpid();
    wakeups = 0;
#ifdef __linux__
    /* the calling thread is the main thread: the one Python runs signal handlers in */
    if (have_timer) {
        timer_delete(wake_timer);
        have_timer = 0;
    }
    struct sigevent event;
    memset(&event, 0, sizeof(event));
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = (int)helper;
    event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    have_timer = timer_create(CLOCK_MONOTONIC, &event, &wake_timer) == 0;
#endif
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    sigemptyset(&action.sa_mask);
    action.sa_handler = on_helper;
    action.sa_flags = 0; /* interrupts the main thread's system call: the point of it */
    if (sigaction((int)helper, &action, NULL) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    action.sa_handler = on_sigterm;
    action.sa_flags = SA_RESTART; /* the program's own system calls go on undisturbed */
    if (sigaction(SIGTERM, &action, NULL) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

static PyObject *
sigterm_handled(PyObject *module, PyObject *unused)
{
    arm(0, 0); /* the handler has begun: no more wake-ups */
    Py_RETURN_NONE;
}

static PyObject *
die_of_sigterm(PyObject *module, PyObject *unused)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    kill(getpid(), SIGTERM);
    Py_RETURN_NONE;
}
#endif

/* The program's other threads stop at their next line of Python code, for good: the process
 * is about to die of SIGTERM, which would have stopped them at once. Code of racewatch's own
 * and imports in progress (whose module locks the writer may need) go on to their end, and
 * racewatch's own threads (`spared`, by ident) are left alone. */
static PyThreadState *writer;
static unsigned long spared[4];
static int nspared;

static int
own_frame(PyFrameObject *frame)
{
    PyObject *globals = PyFrame_GetGlobals(frame);
    PyObject *name = globals ? PyDict_GetItemString(globals, "__name__") : NULL;
    const char *text = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    int own = text && ((strncmp(text, "racewatch", 9) == 0 && (!text[9] || text[9] == '.')) ||
                       strncmp(text, "importlib", 9) == 0 || strcmp(text, "_frozen_importlib") == 0);
    Py_XDECREF(globals);
    PyErr_Clear();
    return own;
}

static int
freeze(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    if (PyThreadState_Get() == writer || frame == NULL || own_frame(frame)) {
        return 0;
    }
    unsigned long ident = PyThread_get_thread_ident();
    for (int i = 0; i < nspared; i++) {
        if (spared[i] == ident) {
            return 0;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        pause(); /* until the process dies */
    }
    Py_END_ALLOW_THREADS
}

static PyObject *
freeze_other_threads(PyObject *module, PyObject *idents)
{
    nspared = 0;
    PyObject *iter = PyObject_GetIter(idents);
    if (!iter) {
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(iter)) != NULL && nspared < 4) {
        spared[nspared++] = PyLong_AsUnsignedLong(item);
        Py_DECREF(item);
    }
    Py_XDECREF(item);
    Py_DECREF(iter);
    if (PyErr_Occurred()) {
        return NULL;
    }
    writer = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030C0000
    PyEval_SetTraceAllThreads(freeze, NULL);
    PyEval_SetTrace(NULL, NULL); /* not this one */
#else
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(writer->interp); ts;
         ts = PyThreadState_Next(ts)) {
        if (ts != writer && _PyEval_SetTrace(ts, freeze, NULL) < 0) {
            return NULL;
        }
    }
#endif
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
#ifndef _WIN32
    {"catch_sigterm", catch_sigterm, METH_O,
     "catch_sigterm(helper): on SIGTERM run the Python handler of signal `helper` in the main "
     "thread (unless SIGTERM has a handler); whether it is caught."},
    {"sigterm_handled", sigterm_handled, METH_NOARGS,
     "sigterm_handled(): the helper's handler has begun; stop waking the main thread."},
    {"die_of_sigterm", die_of_sigterm, METH_NOARGS,
     "die_of_sigterm(): restore SIGTERM's default action and send it to this process."},
#endif
    {"freeze_other_threads", freeze_other_threads, METH_O,
     "freeze_other_threads(spared): other threads but those (idents) stop at their next line "
     "of the program's code."},
    {"hit_set", hit_set, METH_O, "hit_set(site): mark the site's line as run."},
    {"hit_count", hit_count, METH_O, "hit_count(site): count a run (plain increment)."},
    {"hit_atomic", hit_atomic, METH_O, "hit_atomic(site): count a run (atomic increment)."},
    {"hit_token", (PyCFunction)(void (*)(void))hit_token, METH_FASTCALL,
     "hit_token(site, mode): the constant of a line probe; ~token counts in `mode`."},
    {"enable", enable, METH_O, "enable(flag): hit tokens count (True) or do nothing (False)."},
    {"reserve", reserve, METH_O, "reserve(n): make site ids below n countable; the capacity."},
    {"counts", (PyCFunction)(void (*)(void))counts, METH_FASTCALL,
     "counts(start, stop): the counters of site ids in [start, stop) as native uint64 bytes."},
    {"snapshot", (PyCFunction)(void (*)(void))snapshot, METH_FASTCALL,
     "snapshot(start, stop): (counts(start, stop), [(code, lasti) of every frame of every "
     "thread]), read with no other thread running in between."},
    {"reset", reset, METH_NOARGS, "reset(): zero every counter (a fork child starts afresh)."},
    {NULL, NULL, 0, NULL},
};

/* The counters are the process's: the types and the capsule are made once, however many times
 * the module is executed. */
static int
exec_module(PyObject *m)
{
    static int ready = 0;
    if (!ready) {
        for (int mode = MODE_SET; mode <= MODE_ATOMIC; mode++) {
            if (PyType_Ready(&hit_token_types[mode]) < 0) {
                return -1;
            }
        }
        ready = 1;
    }
    PyObject *capsule = PyCapsule_New((void *)&api, RW_COUNTERS_CAPSULE, NULL);
    if (capsule == NULL) {
        return -1;
    }
    int err = PyModule_AddObjectRef(m, "_api", capsule);
    Py_DECREF(capsule);
    return err;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil /* 3.13+: counting is atomic where it must be, the table grows under a lock */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "racewatch.cover._counters",
    "Coverage counters in C: one uint64 per site id, set / count / atomic probes.", 0, methods,
    slots,
};

PyMODINIT_FUNC
PyInit__counters(void)
{
    return PyModuleDef_Init(&module);
}
