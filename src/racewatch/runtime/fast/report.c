/* Race reports: each pair of racing sites counted once, and the event handed to the report
 * writer (runtime/report.py) built from what the runtime recorded. */
#include "fast.h"

PyObject *reported;       /* dict: (site, site) -> count */
static Lock report_lock;  /* reported (a leaf: ints and pairs of ints only inside) */

/* How many times the pair raced before this one (-1: error). */
static long count_pair(uint32_t a, uint32_t b) {
    PyObject *pair = a <= b ? Py_BuildValue("(II)", a, b) : Py_BuildValue("(II)", b, a);
    if (!pair) return -1;
    long n = -1;
    LOCK(&report_lock);
    PyObject *count = PyDict_GetItemWithError(reported, pair);
    if (count || !PyErr_Occurred()) {
        n = count ? PyLong_AsLong(count) : 0;
        PyObject *v = PyLong_FromLong(n + 1);
        if (!v || PyDict_SetItem(reported, pair, v) < 0) n = -1;
        Py_XDECREF(v);
    }
    UNLOCK(&report_lock);
    Py_DECREF(pair);
    return n;
}

/* Races found during one update, reported once the update is complete (no lock held). */
int report_found(PyObject *target, PyObject *key, ThreadState *t, uint32_t site,
                 int is_write, int atomic, Found *found, int nfound) {
    for (int i = 0; i < nfound; i++) {
        long n = count_pair(found[i].prev.site, site);
        if (n < 0) return -1;
        PyObject *callback = n ? NULL : config_ref(&on_race);
        if (!callback) continue;
        Access *p = &found[i].prev;
        uint32_t lockset, stack;
        extra_parts(p->extra, &lockset, &stack);
        PyObject *event = Py_BuildValue(
            "(OOIIiiNIIiiNN)", target, key, site, t->tid, is_write, atomic,
            lockset_tuple(t->lockset), p->site, EPOCH_TID(p->epoch), found[i].prev_write,
            (int)(p->epoch & 1), lockset_tuple(lockset), stack_tuple(stack));
        if (!event) { Py_DECREF(callback); return -1; }
        PyObject *r = PyObject_CallOneArg(callback, event);
        Py_DECREF(event);
        if (!r) PyErr_WriteUnraisable(callback);   /* never into the program's own flow */
        Py_XDECREF(r);
        Py_DECREF(callback);
    }
    return 0;
}

PyObject *fast_races(PyObject *m, PyObject *noargs) {
    LOCK(&report_lock);
    PyObject *copy = PyDict_Copy(reported);
    UNLOCK(&report_lock);
    return copy;
}

void report_after_fork(void) {
    memset(&report_lock, 0, sizeof(report_lock));
    PyDict_Clear(reported);
}
