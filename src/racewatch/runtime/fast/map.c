/* A pointer-keyed hash map: the tables from objects to their shadow state, and others. */
#include "fast.h"

/* Open addressing with linear probing, at most three quarters full (the table of every
 * tracked object is a good part of racewatch's memory), and deletion by shifting back the
 * entries that follow (no tombstones): programs that make and drop millions of objects would
 * otherwise fill the table with dead slots that every lookup of a new object has to walk.
 * Key 0 is the empty slot. */

/* Objects allocated together (one allocator pool) are mostly used together: their slots are
 * kept together too, in address order within each 64 KiB of memory, and only the 64 KiB
 * regions are scattered. A lookup then mostly finds its slot in a cache line a neighbour's
 * lookup just loaded, where a hash of the whole address would miss the cache every time
 * (measured with perf on an allocation-heavy workload: the slot load was the costliest
 * instruction of the fast path). Objects are 16-byte aligned, hence the shift by 4. */
static inline size_t map_home(const Map *m, uintptr_t k) {
    uint64_t region = (uint64_t)(k >> 16) * 0x9E3779B97F4A7C15ull;
    return (size_t)((k >> 4) + (region >> 32)) & (m->cap - 1);
}

HOT void *map_get(const Map *m, uintptr_t key) {
    if (!m->cap) return NULL;
    for (size_t i = map_home(m, key), mask = m->cap - 1;; i = (i + 1) & mask) {
        const Slot *s = &m->slots[i];
        if (s->key == key) return s->value;
        if (!s->key) return NULL;
    }
}

static void map_insert(Map *m, uintptr_t key, void *value) {
    for (size_t i = map_home(m, key), mask = m->cap - 1;; i = (i + 1) & mask) {
        Slot *s = &m->slots[i];
        if (!s->key || s->key == key) {
            if (!s->key) m->used++;
            s->key = key;
            s->value = value;
            return;
        }
    }
}

static int map_resize(Map *m, size_t cap) {
    Slot *old = m->slots;
    size_t oldcap = m->cap;
    Slot *slots = PyMem_RawCalloc(cap, sizeof(Slot));
    if (!slots) { PyErr_NoMemory(); return -1; }
    m->slots = slots;
    m->cap = cap;   /* a power of two */
    m->used = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key) map_insert(m, old[i].key, old[i].value);
    PyMem_RawFree(old);
    return 0;
}

int map_put(Map *m, uintptr_t key, void *value) {
    if ((m->used + 1) * 2 > m->cap && map_resize(m, m->cap ? m->cap * 2 : 1024) < 0)
        return -1;
    map_insert(m, key, value);
    return 0;
}

void map_del(Map *m, uintptr_t key) {
    last_addr = 0;
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = map_home(m, key);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key) return;
        i = (i + 1) & mask;
    }
    /* shift back every later entry of the run whose home is not between the hole and it */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = map_home(m, m->slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].value = NULL;
    m->used--;
}

void map_clear(Map *m) {
    last_addr = 0;
    PyMem_RawFree(m->slots);
    memset(m, 0, sizeof(*m));
}

