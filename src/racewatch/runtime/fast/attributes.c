/* Where an attribute access through an instance lands (runtime/attributes.py is the
 * reference): the plan its class's attribute gives it, cached by (type, name), and the
 * instances' __dict__ aliases. */
#include "fast.h"

static PyObject *marker;   /* sitekinds.MARKER: the last constant of instrumented code */
static PyObject *slot_names[3], *property_slots[3], *property_fields[3];
enum { SLOT_GET, SLOT_SET, SLOT_DELETE };

#define ATTR_CACHE_BITS 12
static AttrCache attr_cache[1 << ATTR_CACHE_BITS];
static Lock plan_lock;    /* writers of attr_cache (a leaf) */
static Lock alias_lock;   /* the aliases map and its Refs (a leaf) */

static inline AttrCache *attr_slot(PyTypeObject *tp, PyObject *name) {
    uint64_t h = ((uint64_t)(uintptr_t)tp ^ ((uint64_t)(uintptr_t)name << 7)) *
                 0x9E3779B97F4A7C15ull;
    return &attr_cache[h >> (64 - ATTR_CACHE_BITS)];
}

/* The plan of `name` on instances of `tp` if cached (while tp's version tag holds), or NULL.
 * With a GIL it is the cache's own entry, read in place (copying it cost the fast path a
 * tenth of its instructions); without one, a consistent copy made in `buf`. */
HOT const AttrCache *attr_hit(PyTypeObject *tp, PyObject *name, AttrCache *buf) {
    const AttrCache *ac = attr_slot(tp, name);
#ifdef RW_FREE_THREADED
    uint32_t seq = LOAD_ACQ(&ac->seq);
    if (seq & 1) return NULL;
    buf->type = LOAD(&ac->type);
    buf->name = LOAD(&ac->name);
    buf->version = LOAD(&ac->version);
    buf->container = LOAD(&ac->container);
    buf->read = LOAD(&ac->read);
    buf->write = LOAD(&ac->write);
    buf->owner = LOAD(&ac->owner);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (LOAD(&ac->seq) != seq) return NULL;
    ac = buf;
#else
    (void)buf;
#endif
    /* no entry holds version 0 (attr_plan fills none): a tag-less type never matches */
    return ac->type == tp && ac->name == name && ac->version == LOAD(&tp->tp_version_tag) ?
           ac : NULL;
}

static void attr_fill(const AttrCache *plan) {
    AttrCache *ac = attr_slot(plan->type, plan->name);
    LOCK(&plan_lock);
#ifdef RW_FREE_THREADED
    STORE(&ac->seq, ac->seq + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    STORE(&ac->type, plan->type);
    STORE(&ac->name, plan->name);
    STORE(&ac->version, plan->version);
    STORE(&ac->container, plan->container);
    STORE(&ac->read, plan->read);
    STORE(&ac->write, plan->write);
    STORE(&ac->owner, plan->owner);
    STORE_REL(&ac->seq, ac->seq + 1);
#else
    *ac = *plan;
#endif
    UNLOCK(&plan_lock);
}

/* Whether `code` is code racewatch rewrote (its probes see its accesses). */
int code_instrumented(PyCodeObject *code) {
    PyObject *consts = code->co_consts;
    Py_ssize_t n = consts ? PyTuple_GET_SIZE(consts) : 0;
    if (!n || !marker) return 0;
    PyObject *last = PyTuple_GET_ITEM(consts, n - 1);
    return PyUnicode_CheckExact(last) && PyUnicode_Compare(last, marker) == 0;
}

/* Whether calling `fn` runs code racewatch rewrote. */
static int instrumented(PyObject *fn) {
    if (!fn || !PyFunction_Check(fn)) return 0;
    return code_instrumented((PyCodeObject *)PyFunction_GET_CODE(fn));
}

/* Whether slot `which` of a data descriptor leaves nothing to record at the call site: it runs
 * instrumented code, or raises (a property without that function; no __set__ or __delete__).
 * A data descriptor without __get__ reads the instance's own attribute. */
static int quiet(PyObject *descr, int which) {
    PyObject *impl = _PyType_Lookup(Py_TYPE(descr), slot_names[which]);   /* borrowed */
    if (!impl) return which != SLOT_GET;
    if (impl != property_slots[which]) return instrumented(impl);
    PyObject *field = property_fields[which];   /* property's own slot: its fget/fset/fdel */
    PyObject *fn = Py_TYPE(field)->tp_descr_get(field, descr, (PyObject *)Py_TYPE(descr));
    if (!fn) { PyErr_Clear(); return 0; }
    int q = fn == Py_None || instrumented(fn);
    Py_DECREF(fn);
    return q;
}

/* Methods: what instances normally read from the class, never having them themselves. */
static int is_method(PyObject *attr) {
    return PyFunction_Check(attr) || Py_IS_TYPE(attr, &PyMethodDescr_Type) ||
           Py_IS_TYPE(attr, &PyClassMethodDescr_Type) ||
           PyObject_TypeCheck(attr, &PyClassMethod_Type) ||
           PyObject_TypeCheck(attr, &PyStaticMethod_Type);
}

/* The class in tp's MRO whose own dict holds `attr` under `key` (borrowed), or NULL. */
static PyObject *defining_class(PyTypeObject *tp, PyObject *key, PyObject *attr) {
    PyObject *mro = tp->tp_mro;
    for (Py_ssize_t i = 0; mro && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *cls = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *dict = PyType_GetDict(cls);   /* static builtin types keep it elsewhere */
#else
        PyObject *dict = Py_XNewRef(cls->tp_dict);
#endif
        if (!dict) { PyErr_Clear(); continue; }
        PyObject *found = PyDict_GetItemWithError(dict, key);   /* a str key: no user code */
        Py_DECREF(dict);
        if (found == attr) return (PyObject *)cls;
        if (!found && PyErr_Occurred()) { PyErr_Clear(); return NULL; }
    }
    return NULL;
}

/* The plan of attribute `key` (an exact str) of instances of heap type `tp`, cached while the
 * type's version tag holds (the descriptors it finds are immutable, or are classes of their
 * own whose change we accept not to see). */
AttrCache attr_plan(PyTypeObject *tp, PyObject *key, int container) {
    /* the tag before the lookup: a change meanwhile makes a new one */
    AttrCache plan = {0, tp, key, LOAD(&tp->tp_version_tag), (uint8_t)container, AT_INSTANCE,
                      AT_INSTANCE, NULL};
    PyObject *attr = _PyType_Lookup(tp, key);   /* the type's method cache; no user code */
    if (attr) {
        PyTypeObject *kind = Py_TYPE(attr);
        if (is_method(attr)) {
            plan.owner = defining_class(tp, key, attr);
            if (plan.owner) plan.read = AT_CLASS;
        } else if (kind->tp_descr_set) {
            if (kind == &PyMemberDescr_Type || kind == &PyGetSetDescr_Type) {
                if (kind == &PyGetSetDescr_Type &&
                    PyUnicode_CompareWithASCIIString(key, "__dict__") == 0)
                    plan.read = AT_DICT;
            } else {
                if (quiet(attr, SLOT_GET)) plan.read = AT_NOTHING;
                if (quiet(attr, SLOT_SET) && quiet(attr, SLOT_DELETE)) plan.write = AT_NOTHING;
            }
        } else if (!kind->tp_descr_get) {   /* a plain value: a class-level default */
            plan.owner = defining_class(tp, key, attr);
            if (plan.owner && (((PyTypeObject *)plan.owner)->tp_flags & Py_TPFLAGS_HEAPTYPE))
                plan.read = AT_VALUE;
            else
                plan.owner = NULL;
        }
    }
    if (plan.version)   /* borrowed pointers: a changed or new type has another tag */
        attr_fill(&plan);
    return plan;
}

/* PYVERSIONS: an instance's __dict__ if it exists already, found without making it: a managed
 * dict lives three words before the object (one on free-threaded builds), and 3.12 keeps a
 * tagged pointer to inline values there instead while there is no dict. NULL: none yet. */
static inline PyObject *existing_dict(PyObject *obj) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
#ifdef Py_GIL_DISABLED
        uintptr_t word = LOAD(&((uintptr_t *)obj)[-1]);
#else
        uintptr_t word = ((uintptr_t *)obj)[-3];
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
        if (word & 1) return NULL;
#endif
        return (PyObject *)word;
    }
    if (tp->tp_dictoffset > 0) return *(PyObject **)((char *)obj + tp->tp_dictoffset);
    return NULL;
}

/* obj's own __dict__ (borrowed), made if its attributes are kept inline, or NULL. */
static PyObject *own_dict(PyObject *obj) {
    PyObject **where = _PyObject_GetDictPtr(obj);   /* may allocate the dict */
    if (!where) { PyErr_Clear(); return NULL; }
    return *where && PyDict_CheckExact(*where) ? *where : NULL;
}

/* Whether obj's own __dict__ has `key`, which then hides the class's value. */
static int shadowed(PyObject *obj, PyObject *key) {
    PyObject *dict = own_dict(obj);
    int has = dict ? PyDict_Contains(dict, key) : 0;   /* a str key */
    if (has < 0) { PyErr_Clear(); return 0; }
    return has;
}

/* ---- __dict__ aliases: obj.__dict__[k] is obj.k ----------------------------------------- */

/* dict address -> the instance whose __dict__ it is: a Ref to it, or, for an instance whose
 * death a wrapped deallocator reports (with the GIL), its address tagged with RAW: then no
 * weakref, which `obj.__weakref__` would show (boltons' wrap_trace took it for a method).
 * `alias_dicts` maps such an instance back to its dict, so its death drops the entry. */
static Map aliases, alias_dicts;
static PyObject *alias_died_callback;
#define RAW ((uintptr_t)1)

static PyObject *alias_died(PyObject *module, PyObject *wr) {
    Ref *ref = (Ref *)wr;
    LOCK(&alias_lock);
    int mine = map_get(&aliases, ref->addr) == ref;
    if (mine) map_del(&aliases, ref->addr);
    UNLOCK(&alias_lock);
    if (mine) Py_DECREF(wr);   /* the map's reference */
    Py_RETURN_NONE;
}

/* An instance followed through its deallocator died (note_death). */
void alias_instance_died(PyObject *op) {
    if (!LOAD(&alias_dicts.used)) return;
    LOCK(&alias_lock);
    uintptr_t dict = (uintptr_t)map_get(&alias_dicts, (uintptr_t)op);
    if (dict) {
        map_del(&alias_dicts, (uintptr_t)op);
        if (map_get(&aliases, dict) == (void *)((uintptr_t)op | RAW)) map_del(&aliases, dict);
    }
    UNLOCK(&alias_lock);
}

/* The instance the alias of `dict` stands for (a new reference), or NULL. */
static PyObject *alias_target(PyObject *dict) {
    LOCK(&alias_lock);
    PyObject *value = map_get(&aliases, (uintptr_t)dict);
    if (value && ((uintptr_t)value & RAW)) {
        /* Alive unless its deallocation has begun (refcount 0): that ends in note_death,
         * which drops the entry under this lock, and with the GIL no other thread runs in
         * between this test and the reference taken. */
        PyObject *obj = (PyObject *)((uintptr_t)value & ~RAW);
        obj = Py_REFCNT(obj) > 0 ? Py_NewRef(obj) : NULL;
        UNLOCK(&alias_lock);
        return obj;
    }
    PyObject *ref = Py_XNewRef(value);
    UNLOCK(&alias_lock);
    if (!ref) return NULL;
    PyObject *obj = weak_target(ref);
    Py_DECREF(ref);
    return obj;
}

static PyMethodDef alias_died_def = {"_alias_died", alias_died, METH_O, NULL};

/* Make `dict` an alias of `obj` (value: a Ref to obj, or obj's address tagged RAW). */
static int alias_put(PyObject *dict, PyObject *obj, PyObject *value) {
    LOCK(&alias_lock);
    PyObject *old = map_get(&aliases, (uintptr_t)dict);
    int err = map_put(&aliases, (uintptr_t)dict, value);
    if (!err && ((uintptr_t)value & RAW)) {
        /* obj's __dict__ was replaced: its old dict stops standing for obj, or that entry
         * would outlive obj (alias_instance_died finds only the new dict) */
        uintptr_t before = (uintptr_t)map_get(&alias_dicts, (uintptr_t)obj);
        if (before && before != (uintptr_t)dict && map_get(&aliases, before) == value)
            map_del(&aliases, before);
        err = map_put(&alias_dicts, (uintptr_t)obj, dict);
    }
    UNLOCK(&alias_lock);
    if (err < 0) {
        if (!((uintptr_t)value & RAW)) Py_DECREF(value);
        return -1;
    }
    if (old && !((uintptr_t)old & RAW)) Py_DECREF(old);   /* no lock held: it may run code */
    return 0;
}

/* obj.__dict__ was read: its str keys are obj's attributes from now on. */
static int note_dict(PyObject *obj) {
    PyObject *dict = own_dict(obj);
    if (!dict) return 0;
    PyObject *was = alias_target(dict);
    Py_XDECREF(was);
    if (was == obj) return 0;
#ifndef RW_FREE_THREADED   /* without the GIL only a weakref says safely that it is alive */
    if (watch_by_hook(obj)) return alias_put(dict, obj, (PyObject *)((uintptr_t)obj | RAW));
#endif
    if (!PyType_SUPPORTS_WEAKREFS(Py_TYPE(obj))) return 0;
    PyObject *ref = PyObject_CallFunctionObjArgs((PyObject *)&RefType, obj,
                                                 alias_died_callback, NULL);   /* may run GC */
    if (!ref) { PyErr_Clear(); return 0; }
    ((Ref *)ref)->owner = NULL;
    ((Ref *)ref)->addr = (uintptr_t)dict;
    return alias_put(dict, obj, ref);
}

/* The instance whose __dict__ `dict` is (a new reference), or NULL. */
PyObject *alias_owner(PyObject *dict) {
    if (!LOAD(&aliases.used)) return NULL;
    PyObject *obj = alias_target(dict);
    if (obj && existing_dict(obj) == dict) return obj;   /* not dead, not replaced */
    Py_XDECREF(obj);
    return NULL;
}

/* For the Python twin, which keeps its aliases here: it then shows no weakref either. */
PyObject *fast_note_dict(PyObject *m, PyObject *obj) {
    if (note_dict(obj) < 0) return NULL;
    Py_RETURN_NONE;
}

PyObject *fast_alias_owner(PyObject *m, PyObject *dict) {
    PyObject *obj = PyDict_CheckExact(dict) ? alias_owner(dict) : NULL;
    return obj ? obj : Py_NewRef(Py_None);
}

PyObject *fast_instance_dict(PyObject *m, PyObject *obj) {
    PyObject *dict = own_dict(obj);
    return Py_NewRef(dict ? dict : Py_None);
}

/* ---- where an attribute access lands ----------------------------------------------------- */

static int owner_locs(PyObject *owner, PyObject *key, int is_write, Locs *ls);

/* The accesses of attribute `key` of `obj` (a write covers a delete), by its plan. */
int attr_locs(PyObject *obj, PyObject *key, int is_write, Locs *ls) {
    PyObject *hold = NULL;   /* a proxy's referent, alive until its accesses are in ls */
    if (Py_IS_TYPE(obj, &PySuper_Type) || PyModule_CheckExact(obj))
        return add_loc(ls, attr_owner(obj, key, &hold), key, is_write, 0);
    PyObject *owner = attr_owner(obj, key, &hold);   /* a proxy's referent, or obj */
    if (!owner) return PyErr_Occurred() ? -1 : 0;
    int err = owner_locs(owner, key, is_write, ls);
    Py_XDECREF(hold);
    return err;
}

/* attr_locs for the attribute's owner `owner`. */
static int owner_locs(PyObject *owner, PyObject *key, int is_write, Locs *ls) {
    PyTypeObject *tp = Py_TYPE(owner);
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !PyUnicode_CheckExact(key))
        return add_loc(ls, owner, key, is_write, 0);
    AttrCache plan;
    const AttrCache *hit = attr_hit(tp, key, &plan);
    if (hit) plan = *hit;
    else plan = attr_plan(tp, key, container_kind(owner) != C_NONE);
    switch (is_write ? plan.write : plan.read) {
    case AT_NOTHING: return 0;
    case AT_CLASS: return add_loc(ls, plan.owner, key, 0, 0);
    case AT_VALUE:   /* ls holds owner while shadowed() may run GC */
        if (add_loc(ls, owner, key, 0, 0) < 0) return -1;
        return shadowed(owner, key) ? 0 : add_loc(ls, plan.owner, key, 0, 0);
    case AT_DICT:
        if (add_loc(ls, owner, key, 0, 0) < 0) return -1;
        return note_dict(owner);
    default: return add_loc(ls, owner, key, is_write, 0);
    }
}

/* The fast path's part: whether every access of the plan is this thread's in this epoch
 * already (nothing is looked up beyond the cells, and the instance's existing dict). */
static HOT int plan_same_epoch(const AttrCache *ac, PyObject *obj, PyObject *key,
                               int is_write, uint32_t site, uint32_t *hint) {
    uint8_t how = is_write ? ac->write : ac->read;
    if (__builtin_expect(how == AT_INSTANCE, 1))   /* the commonest: before the jump table */
        return same_epoch_at(obj, key, is_write, 0, site, hint);
    switch (how) {
    case AT_NOTHING: return 1;
    case AT_CLASS: return same_epoch_at(ac->owner, key, 0, 0, site, hint);
    case AT_VALUE: {
        if (!same_epoch_at(obj, key, 0, 0, site, hint)) return 0;
        uint32_t other = 0;
        if (same_epoch_at(ac->owner, key, 0, 0, site, &other)) return 1;
#ifdef RW_FREE_THREADED
        return 0;   /* the dict, held by nothing here, could go meanwhile: the full way */
#else
        PyObject *dict = existing_dict(obj);   /* shadowed: the instance's alone */
        return dict && PyDict_Contains(dict, key) == 1;
#endif
    }
    default: return same_epoch_at(obj, key, is_write, 0, site, hint);
    }
}

/* The fast path of an attribute probe: an instance of a class written in Python (its plan
 * cached), a class (its own attribute, as attr_owner has it) or a module (its globals). */
HOT int attr_same_epoch(PyObject *obj, PyObject *key, int is_write, uint32_t site,
                        uint32_t *hint) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        AttrCache buf;
        const AttrCache *ac = attr_hit(tp, key, &buf);
        if (ac) return plan_same_epoch(ac, obj, key, is_write, site, hint);
        return no_attributes(tp);   /* a lock's `acquire`, say (never planned: no access) */
    }
    if (tp == &PyType_Type) return same_epoch_at(obj, key, is_write, 0, site, hint);
    if (tp == &PyModule_Type)
        return same_epoch_at(PyModule_GetDict(obj), key, is_write, 0, site, hint);
    return 0;
}

/* For a method-kind probe on an object of a class written in Python that is no container:
 * its attribute read, when the (type, name) cache knows the plan. */
HOT int method_same_epoch(PyObject *obj, PyObject *key, uint32_t site, uint32_t *hint) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return 0;
    AttrCache buf;
    const AttrCache *ac = attr_hit(tp, key, &buf);
    return ac && !ac->container && plan_same_epoch(ac, obj, key, 0, site, hint);
}

int attributes_init(void) {
    PyObject *kinds = PyImport_ImportModule("racewatch.runtime.sitekinds");
    marker = kinds ? PyObject_GetAttrString(kinds, "MARKER") : NULL;
    Py_XDECREF(kinds);
    if (!marker) return -1;
    static const char *slots[3] = {"__get__", "__set__", "__delete__"};
    static const char *fields[3] = {"fget", "fset", "fdel"};
    for (int i = 0; i < 3; i++) {
        slot_names[i] = PyUnicode_InternFromString(slots[i]);
        PyObject *field = PyUnicode_InternFromString(fields[i]);
        if (!slot_names[i] || !field) return -1;
        property_slots[i] = Py_XNewRef(_PyType_Lookup(&PyProperty_Type, slot_names[i]));
        property_fields[i] = Py_XNewRef(_PyType_Lookup(&PyProperty_Type, field));
        Py_DECREF(field);
        if (!property_slots[i] || !property_fields[i]) return -1;
    }
    alias_died_callback = PyCFunction_New(&alias_died_def, NULL);
    return alias_died_callback ? 0 : -1;
}
