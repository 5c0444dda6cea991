/* Vector clocks: growing and joining them (epochs and the happens-before test are in fast.h). */
#include "fast.h"

int vc_grow(VC *vc, uint32_t n) {
    if (n <= vc->n) return 0;
    uint64_t *c = PyMem_RawRealloc(vc->c, n * sizeof(uint64_t));
    if (!c) { PyErr_NoMemory(); return -1; }
    memset(c + vc->n, 0, (n - vc->n) * sizeof(uint64_t));
    vc->c = c;
    vc->n = n;
    return 0;
}

int vc_join(VC *dst, const VC *src) {
    if (vc_grow(dst, src->n) < 0) return -1;
    for (uint32_t i = 0; i < src->n; i++)
        if (src->c[i] > dst->c[i]) dst->c[i] = src->c[i];
    return 0;
}
