/* The interpreter's own ways with a main module, for racewatch's runner (runmain.py): how it
 * runs one, what it says of a syntax error in one, and how it waits for threads after one.
 *
 * At the bottom of the stack: `python app.py` evaluates the main code object with no Python frame below it and the whole
 * recursion budget; `python -m pkg` calls runpy._run_module_as_main the same way. racewatch's
 * runner calls from frames of its own, which inspect.stack(), sys._getframe(), warnings'
 * stacklevel and the recursion limit would all see. So for the length of the call, the
 * thread's frame chain starts empty and its recursion counters at their limits; both are put
 * back after, by depth (sys.setrecursionlimit in between keeps working as it does).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* PYVERSIONS: where the current frame and the recursion counters live in PyThreadState.
 * 3.11 keeps the frame in tstate->cframe and one counter for C and Python calls; 3.12 splits
 * the counters (and keeps cframe); 3.13 moves the frame to tstate; 3.14 checks the C stack by
 * address (nothing to reset); 3.15 ends every chain at a sentinel base frame. */
#if PY_VERSION_HEX >= 0x030D0000
#  define CURRENT_FRAME(ts) ((ts)->current_frame)
#else
#  define CURRENT_FRAME(ts) ((ts)->cframe->current_frame)
#endif
#if PY_VERSION_HEX >= 0x030F0000
#  define BOTTOM_FRAME(ts) ((ts)->base_frame)
#else
#  define BOTTOM_FRAME(ts) NULL
#endif
#if PY_VERSION_HEX >= 0x030C0000
#  define PY_REMAINING(ts) ((ts)->py_recursion_remaining)
#  define PY_LIMIT(ts) ((ts)->py_recursion_limit)
#else
#  define PY_REMAINING(ts) ((ts)->recursion_remaining)
#  define PY_LIMIT(ts) ((ts)->recursion_limit)
#endif
#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
#  define C_LIMIT Py_C_RECURSION_LIMIT
#elif PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
#  define C_LIMIT C_RECURSION_LIMIT
#endif

typedef struct {
    struct _PyInterpreterFrame *frame;
    int py_depth;
    int c_depth;
} Above;

static void to_bottom(PyThreadState *ts, Above *above) {
    above->frame = CURRENT_FRAME(ts);
    CURRENT_FRAME(ts) = BOTTOM_FRAME(ts);
    above->py_depth = PY_LIMIT(ts) - PY_REMAINING(ts);
    PY_REMAINING(ts) = PY_LIMIT(ts);
#ifdef C_LIMIT
    above->c_depth = C_LIMIT - ts->c_recursion_remaining;
    ts->c_recursion_remaining = C_LIMIT;
#endif
}

static void back_up(PyThreadState *ts, const Above *above) {
    CURRENT_FRAME(ts) = above->frame;
    PY_REMAINING(ts) = PY_LIMIT(ts) - above->py_depth;
#ifdef C_LIMIT
    ts->c_recursion_remaining = C_LIMIT - above->c_depth;
#endif
}

static PyObject *run_code(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyCode_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "run_code(code, globals)");
        return NULL;
    }
    PyThreadState *ts = PyThreadState_Get();
    Above above;
    to_bottom(ts, &above);
    PyObject *result = PyEval_EvalCode(args[0], args[1], args[1]);
    back_up(ts, &above);
    return result;
}

static PyObject *call(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "call(function, args_tuple)");
        return NULL;
    }
    PyThreadState *ts = PyThreadState_Get();
    Above above;
    to_bottom(ts, &above);
    PyObject *result = PyObject_Call(args[0], args[1], NULL);
    back_up(ts, &above);
    return result;
}

/* The SyntaxError (or ValueError) `python PATH` itself raises for PATH, or None. The
 * interpreter reads a main script with its file tokenizer, whose messages differ from those
 * of compile() on the same bytes (an undeclared non-UTF-8 byte, a NUL, a bad coding cookie).
 * Only asked once compile() failed, so the file's code is never expected to run; should the
 * two tokenizers ever disagree, it meets empty builtins and stops at its first name. */
static PyObject *syntax_error(PyObject *module, PyObject *path) {
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(path, &encoded)) return NULL;
    const char *name = PyBytes_AS_STRING(encoded);   /* decoded back as python decodes argv */
    FILE *fp = fopen(name, "rb");
    if (!fp) {
        Py_DECREF(encoded);
        Py_RETURN_NONE;
    }
    PyObject *globals = PyDict_New();
    PyObject *no_builtins = PyDict_New();
    if (!globals || !no_builtins ||
        PyDict_SetItemString(globals, "__builtins__", no_builtins) < 0) {
        fclose(fp);
        Py_DECREF(encoded);
        Py_XDECREF(globals);
        Py_XDECREF(no_builtins);
        return NULL;
    }
    PyObject *result = PyRun_FileExFlags(fp, name, Py_file_input, globals, globals, 1, NULL);
    Py_DECREF(encoded);
    Py_DECREF(globals);
    Py_DECREF(no_builtins);
    if (result) {
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *value = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    if (value && (PyObject_TypeCheck(value, (PyTypeObject *)PyExc_SyntaxError) ||
                  PyObject_TypeCheck(value, (PyTypeObject *)PyExc_ValueError))) {
        PyException_SetTraceback(value, Py_None);
        return value;
    }
    Py_XDECREF(value);
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX >= 0x030F0000
/* PYVERSIONS: 3.15 waits for threads at exit in a loop, until no thread started by threading
 * as non-daemon is left; when Ctrl-C cuts a wait short, it lets the threads still running be
 * by marking them daemon (as this does, holding the GIL: their states stay listed). Values of
 * _PyThreadState_WHENCE_THREADING and _THREADING_DAEMON (cpython/pystate.h, core-only). */
#define WHENCE_THREADING 3
#define WHENCE_THREADING_DAEMON 6
static void let_threads_be(void) {
    PyThreadState *ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get());
    for (; ts != NULL; ts = PyThreadState_Next(ts)) {
        if (ts->_whence == WHENCE_THREADING) {
            ts->_whence = WHENCE_THREADING_DAEMON;
        }
    }
}
#endif

/* threading._shutdown() (`shutdown`, the real one), as the interpreter calls it when the main
 * module has ended: an exception it raises (Ctrl-C while non-daemon threads are joined) is
 * printed as the interpreter prints it there, and goes no further. Returns whether it raised. */
static PyObject *shutdown_threads(PyObject *module, PyObject *shutdown) {
    PyObject *result = PyObject_CallNoArgs(shutdown);
    if (result) {
        Py_DECREF(result);
        Py_RETURN_FALSE;
    }
#if PY_VERSION_HEX >= 0x030F0000
    let_threads_be();
#endif
#if PY_VERSION_HEX >= 0x030D0000   /* PYVERSIONS: 3.13 words it differently */
    PyErr_FormatUnraisable("Exception ignored on threading shutdown");
#else
    /* Set aside while threading is looked up: a lookup that misses the type attribute cache
     * clears any exception pending (_PyType_Lookup), and only the first line would print. */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *threading = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    PyErr_WriteUnraisable(threading ? threading : shutdown);
    Py_XDECREF(threading);
#endif
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"run_code", (PyCFunction)(void (*)(void))run_code, METH_FASTCALL,
     "run_code(code, globals): evaluate code in globals, as `python SCRIPT` does."},
    {"call", (PyCFunction)(void (*)(void))call, METH_FASTCALL,
     "call(function, args): function(*args), as `python -m` calls runpy."},
    {"syntax_error", syntax_error, METH_O,
     "syntax_error(path): the error `python PATH` raises for the file's source, or None."},
    {"shutdown_threads", shutdown_threads, METH_O,
     "shutdown_threads(shutdown): shutdown(), its exception printed as python prints it; True\n"
     "if it raised."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "racewatch._asmain",
    "The interpreter's own ways with a main module: its stack, its file's syntax errors.",
    0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__asmain(void) { return PyModuleDef_Init(&module_def); }
