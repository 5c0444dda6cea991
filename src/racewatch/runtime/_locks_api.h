/* How the lock hooks (_locks.c) hand lock events to the C runtime: a capsule of this struct.
 * `count` is the number of levels acquired or released (0 on release: all of them, as
 * RLock._release_save does); `reentrant` is true for RLock. Both return -1 with an exception
 * set on failure (the hook reports it as unraisable). */
#ifndef RACEWATCH_LOCKS_API_H
#define RACEWATCH_LOCKS_API_H

#define RW_LOCK_SINK_CAPSULE "racewatch.runtime._fast.lock_sink"

typedef struct {
    int (*acquired)(PyObject *lock, int reentrant, unsigned long count);
    int (*released)(PyObject *lock, int reentrant, unsigned long count);
} RwLockSink;

#endif
