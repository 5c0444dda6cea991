/* How the lock hooks (_locks.c) hand lock events to the C runtime: a capsule of this struct.
 * `count` is the number of levels acquired or released (0 on release: all of them, as
 * RLock._release_save does); `flags` says what the lock is. Both return -1 with an exception
 * set on failure (the hook reports it as unraisable). */
#ifndef RACEWATCH_LOCKS_API_H
#define RACEWATCH_LOCKS_API_H

#define RW_LOCK_SINK_CAPSULE "racewatch.runtime._fast.lock_sink"

#define RW_LOCK_REENTRANT 1   /* an RLock: acquisitions by its holder nest */
#define RW_LOCK_INNER 2       /* a modelled primitive's own lock: orders nothing, excludes */

typedef struct {
    int (*acquired)(PyObject *lock, int flags, unsigned long count);
    int (*released)(PyObject *lock, int flags, unsigned long count);
    /* the edges of other C primitives (queue.SimpleQueue): release-like before a put,
     * acquire-like after a get */
    int (*happens_before)(PyObject *obj);
    int (*happens_after)(PyObject *obj);
} RwLockSink;

#endif
