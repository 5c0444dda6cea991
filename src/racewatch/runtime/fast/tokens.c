/* Token probes: the constants of probe sites whose type slots the eval loop calls directly
 * (`obj in token`, `~token`, `token[key] = obj`), each with its kind's copy of the fast path,
 * and the merged probes that also count their line. */
#include "fast.h"
#include "../../cover/_counters_api.h"

/* The constant of a token probe site (rewriter/instrument.py). Instrumented code reaches the
 * runtime through the token's C slots straight from the eval loop, without the call sequence
 * a probe function costs (half of it, measured): `obj in token` is an access of obj's
 * location token->key (attributes, cells, super, iteration), `~token` of the running code's
 * global token->key, and `token[key] = obj` of obj with a key from the stack (items,
 * operators). */
typedef struct {
    PyObject_HEAD
    PyObject *site_obj;   /* the site id as read()/write() take it */
    PyObject *key;        /* the name accessed, or None for keyed and iteration probes */
    long site;
    uint8_t is_write;
    uint8_t line_mode;    /* a merged probe's counting mode (see count_line) */
    uint32_t hint;        /* where the key's cell was last found (see same_epoch_at) */
    uint64_t *counter;    /* a merged probe's line counter, NULL until known */
    PyObject *hit;        /* a merged probe's hit token, or NULL for an access alone */
} Token;

static int tokens_enabled = 1;   /* 0 once racewatch stops: tokens record nothing */
#define ENABLED() rw_enabled(&tokens_enabled)

/* Everything past the fast path: kept out of line so the slots stay small. */
static Py_NO_INLINE int token_slow(Token *t, PyObject *obj, PyObject *key) {
    if (!ENABLED()) return 0;
    PyObject *r = probe(obj, key, t->site_obj, t->is_write);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

/* Generic tokens (every kind but the three below): `obj in token`, `token[key] = obj`. */
static int token_contains(Token *t, PyObject *obj) {
    if (ENABLED() && same_epoch(obj, t->key, t->site, t->is_write, &t->hint)) return 0;
    return token_slow(t, obj, t->key);
}

static int token_setitem(Token *t, PyObject *key, PyObject *obj) {
    if (!obj) obj = Py_None;
    if (ENABLED() && same_epoch(obj, key, t->site, t->is_write, &t->hint)) return 0;
    return token_slow(t, obj, key);
}

/* Attribute tokens: `obj in token` for obj.key. */
static int attr_contains(Token *t, PyObject *obj) {
    if (ENABLED() && attr_same_epoch(obj, t->key, t->is_write, (uint32_t)t->site, &t->hint))
        return 0;
    return token_slow(t, obj, t->key);
}

/* Closure cell tokens: `cell in token`. */
static int cell_contains(Token *t, PyObject *cell) {
    if (ENABLED() && same_epoch_at(cell, t->key, t->is_write, 0, (uint32_t)t->site, &t->hint))
        return 0;
    return token_slow(t, cell, t->key);
}

/* Global tokens: `~token` for the running code's global key. */
static PyObject *global_invert(Token *t) {
    if (ENABLED()) {
        PyObject *globals = PyEval_GetGlobals();
        if (globals && same_epoch_at(globals, t->key, t->is_write, 0, (uint32_t)t->site,
                                         &t->hint))
            Py_RETURN_NONE;
    }
    if (token_slow(t, Py_None, t->key) < 0) return NULL;
    Py_RETURN_NONE;
}

static void token_dealloc(Token *t) {
    Py_XDECREF(t->site_obj);
    Py_XDECREF(t->key);
    Py_XDECREF(t->hit);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *token_repr(Token *t) {
    return PyUnicode_FromFormat("<racewatch probe %ld>", t->site);
}

/* A site id means nothing in another process: a pickled token comes back as one that
 * records nothing (racewatch.runtime.null.Token). */
static PyObject *token_reduce(PyObject *t, PyObject *noargs) {
    PyObject *null = PyImport_ImportModule("racewatch.runtime.null");
    if (!null) return NULL;
    PyObject *cls = PyObject_GetAttrString(null, "Token");
    Py_DECREF(null);
    if (!cls) return NULL;
    return Py_BuildValue("(N())", cls);
}

static PyMethodDef token_methods[] = {
    {"__reduce__", token_reduce, METH_NOARGS, NULL},
    {NULL},
};

/* Comparison tokens: `token[right] = left` for `left OP right`; nothing to record unless a
 * container's own comparison runs (eq_reads). */
static int eq_setitem(Token *t, PyObject *key, PyObject *obj) {
    if (!obj) obj = Py_None;
    if (!ENABLED() || !eq_reads(obj, key)) return 0;
    return token_slow(t, obj, key);
}

/* Call tokens (rewriter/instrument.py _call_site): `token[callee] = arg0` before a call with
 * one argument, `token[callee][arg0] = arg1` with two or three. Slots rather than a probe
 * function: sys.setprofile, cProfile and sys.monitoring see calls, and only the program's.
 * `token[callee]` is the sink, whose item assignment does nothing, unless the callee is a
 * builtin accessor: then a BoundCall, made only for those calls. */
typedef struct {
    PyObject_HEAD
    PyObject *callee;
    PyObject *site_obj;
} BoundCall;

static PyObject *call_sink;

static int call_setitem(Token *t, PyObject *callee, PyObject *arg0) {
    if (!ENABLED() || !arg0 || !is_accessor(callee)) return 0;
    PyObject *r = call_access(callee, arg0, Py_None, t->site_obj);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static PyTypeObject BoundCallType;

#ifndef Py_GIL_DISABLED
static BoundCall *spare_bound;   /* reused once nothing holds it any more */
#endif

static PyObject *call_subscript(Token *t, PyObject *callee) {
    if (!ENABLED() || !is_accessor(callee)) return Py_NewRef(call_sink);
#ifndef Py_GIL_DISABLED
    BoundCall *spare = spare_bound;
    if (spare && Py_REFCNT(spare) == 1) {
        Py_SETREF(spare->callee, Py_NewRef(callee));
        Py_SETREF(spare->site_obj, Py_NewRef(t->site_obj));
        return Py_NewRef(spare);
    }
#endif
    BoundCall *bound = PyObject_New(BoundCall, &BoundCallType);
    if (!bound) return NULL;
    bound->callee = Py_NewRef(callee);
    bound->site_obj = Py_NewRef(t->site_obj);
#ifndef Py_GIL_DISABLED
    if (!spare_bound) spare_bound = (BoundCall *)Py_NewRef(bound);
#endif
    return (PyObject *)bound;
}

static int bound_setitem(BoundCall *bound, PyObject *arg0, PyObject *arg1) {
    PyObject *r = call_access(bound->callee, arg0, arg1 ? arg1 : Py_None, bound->site_obj);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static void bound_dealloc(BoundCall *bound) {
    Py_XDECREF(bound->callee);
    Py_XDECREF(bound->site_obj);
    Py_TYPE(bound)->tp_free((PyObject *)bound);
}

static int sink_setitem(PyObject *sink, PyObject *key, PyObject *value) {
    return 0;
}

static PyMappingMethods bound_mapping = {.mp_ass_subscript = (objobjargproc)bound_setitem};
static PyMappingMethods sink_mapping = {.mp_ass_subscript = sink_setitem};

static PyTypeObject BoundCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racewatch.runtime._fast.BoundCall",
    .tp_basicsize = sizeof(BoundCall),
    .tp_dealloc = (destructor)bound_dealloc,
    .tp_as_mapping = &bound_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A call token's view of one accessor call: `bound[arg0] = arg1` records it.",
};

static PyTypeObject CallSinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racewatch.runtime._fast.CallSink",
    .tp_basicsize = sizeof(PyObject),
    .tp_as_mapping = &sink_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A call token's view of a call that is no builtin accessor's: nothing to record.",
};

/* Import tokens (imports as synchronization, runtime/imports.py): `value in token` after an
 * import handed `value` to this thread (an acquire of its module's namespace), `~token` at the
 * end of a module's top-level code (a release of the running code's globals). */
static PyObject *namespace_of(PyObject *value) {   /* a new reference, or NULL (maybe none) */
    if (PyModule_Check(value)) return Py_XNewRef(PyModule_GetDict(value));
    if (PyFunction_Check(value) && Py_IS_TYPE(value, &PyFunction_Type))
        return Py_NewRef(PyFunction_GET_GLOBALS(value));
    if (!PyType_Check(value)) return NULL;
    PyObject *name = PyObject_GetAttrString(value, "__module__");
    PyObject *module = name && PyUnicode_Check(name) ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    PyObject *namespace = module && PyModule_Check(module) ? PyModule_GetDict(module) : NULL;
    Py_XINCREF(namespace);
    Py_XDECREF(module);
    PyErr_Clear();   /* what cannot be told is no edge, never the program's error */
    return namespace;
}

static int imported_contains(Token *t, PyObject *value) {
    if (!ENABLED()) return 0;
    PyObject *namespace = namespace_of(value);
    if (!namespace) return 0;
    PyObject *r = fast_happens_after(NULL, namespace);
    Py_DECREF(namespace);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *initialized_invert(Token *t) {
    PyObject *globals = ENABLED() ? PyEval_GetGlobals() : NULL;
    if (globals) {
        PyObject *r = fast_happens_before(NULL, globals);
        if (!r) return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

/* Concatenation tokens: `token[right] = left` for `left + right` / `left += right`; nothing
 * to record unless an operand is a list-like. */
static int concat_setitem(Token *t, PyObject *key, PyObject *obj) {
    if (!obj) obj = Py_None;
    if (!ENABLED() || (!maybe_sequence(obj) && !maybe_sequence(key))) return 0;
    return token_slow(t, obj, key);
}

/* One type per fast path, all with the Token layout: the slot a probe runs is its kind's. */
#define TOKEN_TYPE(var, name, number, sequence, mapping)                                     \
    static PyTypeObject var = {                                                               \
        PyVarObject_HEAD_INIT(NULL, 0)                                                        \
        .tp_name = "racewatch.runtime._fast." name,                                          \
        .tp_basicsize = sizeof(Token),                                                        \
        .tp_dealloc = (destructor)token_dealloc,                                              \
        .tp_repr = (reprfunc)token_repr,                                                      \
        .tp_as_number = number,                                                               \
        .tp_as_sequence = sequence,                                                           \
        .tp_as_mapping = mapping,                                                             \
        .tp_flags = Py_TPFLAGS_DEFAULT,                                                       \
        .tp_doc = "The constant of one token probe site: operations on it are accesses.",    \
        .tp_methods = token_methods,                                                          \
    };

/* Every type has every form (a site of an unregistered kind gets the generic type whatever
 * its form); each specialised type overrides its own kind's. */
static PyObject *token_invert(Token *t) {
    if (token_setitem(t, t->key, Py_None) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyNumberMethods token_number = {.nb_invert = (unaryfunc)token_invert};
static PySequenceMethods token_sequence = {.sq_contains = (objobjproc)token_contains};
static PyMappingMethods token_mapping = {.mp_ass_subscript = (objobjargproc)token_setitem};
static PySequenceMethods attr_sequence = {.sq_contains = (objobjproc)attr_contains};
static PySequenceMethods cell_sequence = {.sq_contains = (objobjproc)cell_contains};
static PyNumberMethods global_number = {.nb_invert = (unaryfunc)global_invert};
static PyMappingMethods eq_mapping = {.mp_ass_subscript = (objobjargproc)eq_setitem};
static PySequenceMethods imported_sequence = {.sq_contains = (objobjproc)imported_contains};
static PyNumberMethods initialized_number = {.nb_invert = (unaryfunc)initialized_invert};
static PyMappingMethods call_mapping = {.mp_subscript = (binaryfunc)call_subscript,
                                        .mp_ass_subscript = (objobjargproc)call_setitem};
static PyMappingMethods concat_mapping = {.mp_ass_subscript = (objobjargproc)concat_setitem};

TOKEN_TYPE(TokenType, "Token", &token_number, &token_sequence, &token_mapping)
TOKEN_TYPE(AttrTokenType, "AttrToken", &token_number, &attr_sequence, &token_mapping)
TOKEN_TYPE(CellTokenType, "CellToken", &token_number, &cell_sequence, &token_mapping)
TOKEN_TYPE(GlobalTokenType, "GlobalToken", &global_number, &token_sequence, &token_mapping)
TOKEN_TYPE(EqTokenType, "EqToken", &token_number, &token_sequence, &eq_mapping)
TOKEN_TYPE(CallTokenType, "CallToken", &token_number, &token_sequence, &call_mapping)
TOKEN_TYPE(ImportedTokenType, "ImportedToken", &token_number, &imported_sequence,
           &token_mapping)
TOKEN_TYPE(InitializedTokenType, "InitializedToken", &initialized_number, &token_sequence,
           &token_mapping)
TOKEN_TYPE(ConcatTokenType, "ConcatToken", &token_number, &token_sequence, &concat_mapping)

/* Merged probes (rewriter/merge.py): a token that also counts the run of its line, in place of
 * the line's own probe, when nothing between the line's start and the access can raise or jump.
 * The line is counted first, whether or not race detection is on, as sys.settrace would have
 * seen it before the access. Types of their own, so that tokens of accesses alone do not test
 * for a line on every run. */
static const RwCountersApi *counters_api;   /* NULL without the C counters */

/* Look up the counter of the token's line, if the C counters have one by now. */
static void find_line_counter(Token *t) {
    const RwCountersApi *api = LOAD_ACQ(&counters_api);
    if (!api) return;
    int mode;
    uint64_t *counter = api->counter_of(t->hit, &mode);
    if (counter) {
        STORE(&t->line_mode, (uint8_t)mode);   /* threads here at once store the same */
        __atomic_store_n(&t->counter, counter, __ATOMIC_RELEASE);
    }
}

/* The counter is not known yet (or the hit token is not a C one): ~hit counts, and the
 * counter is looked up again for the next run. */
static Py_NO_INLINE int count_line_slow(Token *t) {
    PyObject *r = PyNumber_Invert(t->hit);
    if (!r) return -1;
    Py_DECREF(r);
    find_line_counter(t);
    return 0;
}

static inline int count_line(Token *t) {
    uint64_t *counter = __atomic_load_n(&t->counter, __ATOMIC_ACQUIRE);
    if (!counter) return count_line_slow(t);
    if (rw_enabled(counters_api->enabled)) rw_bump(counter, LOAD(&t->line_mode));
    return 0;
}

#define COUNTING_INT_SLOT(name, slot, ...)                                                    \
    static int name(Token *t, __VA_ARGS__) {                                                 \
        return count_line(t) < 0 ? -1 : slot;                                                \
    }
#define COUNTING_INVERT_SLOT(name, slot)                                                      \
    static PyObject *name(Token *t) {                                                         \
        return count_line(t) < 0 ? NULL : slot(t);                                            \
    }

COUNTING_INT_SLOT(line_token_contains, token_contains(t, obj), PyObject *obj)
COUNTING_INT_SLOT(line_token_setitem, token_setitem(t, key, obj), PyObject *key, PyObject *obj)
COUNTING_INT_SLOT(line_attr_contains, attr_contains(t, obj), PyObject *obj)
COUNTING_INT_SLOT(line_cell_contains, cell_contains(t, obj), PyObject *obj)
COUNTING_INT_SLOT(line_eq_setitem, eq_setitem(t, key, obj), PyObject *key, PyObject *obj)
COUNTING_INT_SLOT(line_concat_setitem, concat_setitem(t, key, obj), PyObject *key,
                  PyObject *obj)
COUNTING_INVERT_SLOT(line_token_invert, token_invert)
COUNTING_INVERT_SLOT(line_global_invert, global_invert)

static PyNumberMethods line_token_number = {.nb_invert = (unaryfunc)line_token_invert};
static PySequenceMethods line_token_sequence = {.sq_contains = (objobjproc)line_token_contains};
static PyMappingMethods line_token_mapping = {
    .mp_ass_subscript = (objobjargproc)line_token_setitem};
static PySequenceMethods line_attr_sequence = {.sq_contains = (objobjproc)line_attr_contains};
static PySequenceMethods line_cell_sequence = {.sq_contains = (objobjproc)line_cell_contains};
static PyNumberMethods line_global_number = {.nb_invert = (unaryfunc)line_global_invert};
static PyMappingMethods line_eq_mapping = {.mp_ass_subscript = (objobjargproc)line_eq_setitem};
static PyMappingMethods line_concat_mapping = {
    .mp_ass_subscript = (objobjargproc)line_concat_setitem};

TOKEN_TYPE(LineTokenType, "LineToken", &line_token_number, &line_token_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineAttrTokenType, "LineAttrToken", &line_token_number, &line_attr_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineCellTokenType, "LineCellToken", &line_token_number, &line_cell_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineGlobalTokenType, "LineGlobalToken", &line_global_number, &line_token_sequence,
           &line_token_mapping)
TOKEN_TYPE(LineEqTokenType, "LineEqToken", &line_token_number, &line_token_sequence,
           &line_eq_mapping)
TOKEN_TYPE(LineConcatTokenType, "LineConcatToken", &line_token_number, &line_token_sequence,
           &line_concat_mapping)

/* Token types by fast path (generic, attribute, cell, global, comparison, concatenation),
 * for accesses alone and for merged probes. */
static PyTypeObject *const access_token_types[] = {
    &TokenType, &AttrTokenType, &CellTokenType, &GlobalTokenType, &EqTokenType,
    &ConcatTokenType};
static PyTypeObject *const line_token_types[] = {
    &LineTokenType, &LineAttrTokenType, &LineCellTokenType, &LineGlobalTokenType,
    &LineEqTokenType, &LineConcatTokenType};
#define N_TOKEN_TYPES (sizeof(access_token_types) / sizeof(access_token_types[0]))

/* The counters' capsule, imported once: without it every merged probe takes the slow path. */
static void find_counters_api(void) {
    static int tried;
    if (LOAD_ACQ(&tried)) return;
    /* threads that get here at once each import it: the same capsule */
    const RwCountersApi *api = PyCapsule_Import(RW_COUNTERS_CAPSULE, 0);
    if (!api) PyErr_Clear();
    STORE_REL(&counters_api, api);
    STORE_REL(&tried, 1);
}

PyObject *fast_token(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 4 || !PyLong_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "token(site, is_write, key, hit=None)");
        return NULL;
    }
    int is_write = PyObject_IsTrue(args[1]);
    if (is_write < 0) return NULL;
    PyObject *hit = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    long site = site_of(args[0]);
    uint8_t kind = site >= 0 && (size_t)site < nsite_kinds ? site_kinds[site] : K_NONE;
    int path = kind == K_ATTR ? 1 : kind == K_CELL ? 2 : kind == K_GLOBAL ? 3 :
               kind == K_EQ ? 4 : kind == K_CONCAT ? 5 : 0;   /* the token type tables' order */
    /* kinds with slots of their own are never merged with a line probe (sites.SlotSite) */
    PyTypeObject *own = kind == K_CALL ? &CallTokenType : kind == K_IMPORTED ?
        &ImportedTokenType : kind == K_INITIALIZED ? &InitializedTokenType : NULL;
    if (own) hit = NULL;
    if (hit) find_counters_api();
    Token *t = PyObject_New(Token, own ? own : (hit ? line_token_types : access_token_types)[path]);
    if (!t) return NULL;
    t->site_obj = Py_NewRef(args[0]);
    t->key = Py_NewRef(args[2]);
    t->site = site;
    t->is_write = (uint8_t)is_write;
    t->hint = 0;
    t->hit = Py_XNewRef(hit);
    t->counter = NULL;
    t->line_mode = 0;
    if (hit) find_line_counter(t);
    return (PyObject *)t;
}

PyObject *fast_enable(PyObject *m, PyObject *flag) {
    int on = PyObject_IsTrue(flag);
    if (on < 0) return NULL;
    rw_set_enabled(&tokens_enabled, on);
    Py_RETURN_NONE;
}

int tokens_init(void) {
    for (size_t i = 0; i < N_TOKEN_TYPES; i++)
        if (PyType_Ready(access_token_types[i]) < 0 || PyType_Ready(line_token_types[i]) < 0)
            return -1;
    if (PyType_Ready(&CallTokenType) < 0 || PyType_Ready(&BoundCallType) < 0 ||
        PyType_Ready(&CallSinkType) < 0 || PyType_Ready(&ImportedTokenType) < 0 ||
        PyType_Ready(&InitializedTokenType) < 0)
        return -1;
    call_sink = PyObject_New(PyObject, &CallSinkType);   /* lives as long as the process */
    return call_sink ? 0 : -1;
}
