/* Race reports: each pair of racing sites counted once, and the event handed to the report
 * writer (runtime/report.py) built from what the runtime recorded. */
#include "fast.h"

PyObject *reported;   /* dict: (site, site) -> count */

/* Races found during one update, reported once the update is complete. */
int report_found(PyObject *target, PyObject *key, ThreadState *t, uint32_t site,
                 int is_write, int atomic, Found *found, int nfound) {
    for (int i = 0; i < nfound; i++) {
        uint32_t a = found[i].prev.site, b = site;
        PyObject *pair = a <= b ? Py_BuildValue("(II)", a, b) : Py_BuildValue("(II)", b, a);
        if (!pair) return -1;
        PyObject *count = PyDict_GetItemWithError(reported, pair);
        long n = count ? PyLong_AsLong(count) : 0;
        if (!count && PyErr_Occurred()) { Py_DECREF(pair); return -1; }
        PyObject *v = PyLong_FromLong(n + 1);
        int err = !v || PyDict_SetItem(reported, pair, v) < 0;
        Py_XDECREF(v);
        Py_DECREF(pair);
        if (err) return -1;
        if (n || !on_race) continue;
        Access *p = &found[i].prev;
        uint32_t e = p->extra < nextra ? p->extra : 0;
        PyObject *event = Py_BuildValue(
            "(OOIIiiNIIiiNN)", target, key, site, t->tid, is_write, atomic,
            lockset_tuple(t->lockset), p->site, EPOCH_TID(p->epoch), found[i].prev_write,
            (int)(p->epoch & 1), lockset_tuple(e ? extra_lockset[e] : 0),
            stack_tuple(e ? extra_stack[e] : 0));
        if (!event) return -1;
        PyObject *r = PyObject_CallOneArg(on_race, event);
        Py_DECREF(event);
        if (!r) PyErr_WriteUnraisable(on_race);   /* never into the program's own flow */
        Py_XDECREF(r);
    }
    return 0;
}
