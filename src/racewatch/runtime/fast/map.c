/* Pointer-keyed hash maps, and the sharded tables from objects to their shadow state.
 *
 * Open addressing with linear probing, at most half full (the table of every tracked object is
 * a good part of racewatch's memory). Key 0 is the empty slot. With a GIL, deletion shifts back
 * the entries that follow (no tombstones): programs that make and drop millions of objects
 * would otherwise fill the table with dead slots that every lookup of a new object has to walk.
 * Without one, lookups run while another thread writes, so entries never move within an array:
 * a deleted key becomes a tombstone, and the array is remade (tombstones dropped) when they
 * fill it. A slot's value is stored before its key, both with release: a reader that finds
 * the key finds its value, and a grown array is published whole, the old one retired. */
#include "fast.h"

/* Objects allocated together (one allocator pool) are mostly used together: their slots are
 * kept together too, in address order within each 64 KiB of memory, and only the 64 KiB
 * regions are scattered. A lookup then mostly finds its slot in a cache line a neighbour's
 * lookup just loaded, where a hash of the whole address would miss the cache every time
 * (measured with perf on an allocation-heavy workload: the slot load was the costliest
 * instruction of the fast path). Objects are 16-byte aligned, hence the shift by 4. */
static inline size_t map_home(size_t cap, uintptr_t k) {
    uint64_t region = (uint64_t)(k >> 16) * 0x9E3779B97F4A7C15ull;
    return (size_t)((k >> 4) + (region >> 32)) & (cap - 1);
}

HOT void *map_get(const Map *m, uintptr_t key) {
    const Slots *arr = LOAD_ACQ(&m->arr);
    if (!arr) return NULL;
    for (size_t i = map_home(arr->cap, key), mask = arr->cap - 1;; i = (i + 1) & mask) {
        uintptr_t k = LOAD_ACQ(&arr->slots[i].key);
        if (k == key) return LOAD_ACQ(&arr->slots[i].value);
        if (!k) return NULL;
    }
}

/* Into an array being built (no reader sees it yet) or under the map's lock. */
static void map_insert(Map *m, Slots *arr, uintptr_t key, void *value) {
    Slot *reuse = NULL;
    for (size_t i = map_home(arr->cap, key), mask = arr->cap - 1;; i = (i + 1) & mask) {
        Slot *s = &arr->slots[i];
        if (s->key == key) {
            STORE_REL(&s->value, value);
            return;
        }
        if (s->key == TOMBSTONE && !reuse) reuse = s;
        if (!s->key) {
            Slot *into = reuse ? reuse : s;
            if (reuse) m->dead--;
            m->used++;
            STORE_REL(&into->value, value);
            STORE_REL(&into->key, key);
            return;
        }
    }
}

/* Remake the array with room for `cap` slots, without tombstones; the old one is retired. */
static int map_resize(Map *m, size_t cap) {
    Slots *old = m->arr;
    Slots *arr = PyMem_RawCalloc(1, sizeof(Slots) + cap * sizeof(Slot));
    if (!arr) { PyErr_NoMemory(); return -1; }
    arr->cap = cap;
    m->used = m->dead = 0;
    for (size_t i = 0; old && i < old->cap; i++)
        if (old->slots[i].key && old->slots[i].key != TOMBSTONE)
            map_insert(m, arr, old->slots[i].key, old->slots[i].value);
    STORE_REL(&m->arr, arr);
    retire(old, PyMem_RawFree);
    return 0;
}

int map_put(Map *m, uintptr_t key, void *value) {
    size_t cap = m->arr ? m->arr->cap : 0;
    if ((m->used + m->dead + 1) * 2 > cap) {
        /* dropping tombstones may be room enough; else grow */
        size_t want = cap ? ((m->used + 1) * 4 > cap ? cap * 2 : cap) : 1024;
        if (map_resize(m, want) < 0) return -1;
    }
    map_insert(m, m->arr, key, value);
    return 0;
}

void map_del(Map *m, uintptr_t key) {
#ifndef RW_FREE_THREADED
    last_addr = 0;
#endif
    Slots *arr = m->arr;
    if (!arr) return;
    size_t mask = arr->cap - 1, i = map_home(arr->cap, key);
    while (arr->slots[i].key != key) {
        if (!arr->slots[i].key) return;
        i = (i + 1) & mask;
    }
    m->used--;
#ifdef RW_FREE_THREADED
    STORE_REL(&arr->slots[i].key, TOMBSTONE);
    m->dead++;
#else
    /* shift back every later entry of the run whose home is not between the hole and it */
    Slot *slots = arr->slots;
    for (size_t j = (i + 1) & mask; slots[j].key; j = (j + 1) & mask) {
        size_t home = map_home(arr->cap, slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i].key = 0;
    slots[i].value = NULL;
#endif
}

void map_clear(Map *m) {
#ifndef RW_FREE_THREADED
    last_addr = 0;
#endif
    Slots *arr = m->arr;
    STORE_REL(&m->arr, NULL);
    retire(arr, PyMem_RawFree);
    m->used = m->dead = 0;
}

/* ---- tables of objects: shards by 64 KiB region, so threads on their own objects (which
 * the allocator keeps in their own pages) mostly take different shards' locks ------------- */

static inline Shard *shard_of(Table *t, const void *obj) {
#if SHARD_BITS
    uint64_t region = (uint64_t)((uintptr_t)obj >> 16) * 0x9E3779B97F4A7C15ull;
    return &t->shards[region >> (64 - SHARD_BITS)];
#else
    return &t->shards[0];
#endif
}

HOT void *table_get(Table *t, const void *obj) {
    return map_get(&shard_of(t, obj)->map, (uintptr_t)obj);
}

int table_put(Table *t, const void *obj, void *value) {
    Shard *s = shard_of(t, obj);
    LOCK(&s->lock);
    int err = map_put(&s->map, (uintptr_t)obj, value);
    UNLOCK(&s->lock);
    return err;
}

void table_del(Table *t, const void *obj) {
    Shard *s = shard_of(t, obj);
    LOCK(&s->lock);
    map_del(&s->map, (uintptr_t)obj);
    UNLOCK(&s->lock);
}

size_t table_count(Table *t) {
    size_t n = 0;
    for (size_t i = 0; i < (1u << SHARD_BITS); i++) n += LOAD(&t->shards[i].map.used);
    return n;
}

/* Every value, the table emptied: in a fork child, where no other thread runs. */
size_t table_take_all(Table *t, void **into) {
    size_t n = 0;
    for (size_t i = 0; i < (1u << SHARD_BITS); i++) {
        Map *m = &t->shards[i].map;
        memset(&t->shards[i].lock, 0, sizeof(Lock));
        for (size_t j = 0; m->arr && j < m->arr->cap; j++) {
            uintptr_t k = m->arr->slots[j].key;
            if (k && k != TOMBSTONE) into[n++] = m->arr->slots[j].value;
        }
        map_clear(m);
    }
    return n;
}
