"""Ctrl-C while python waits for a non-daemon thread at exit (semantic identity): the
interpreter prints the KeyboardInterrupt as an ignored exception and exits 0. Just before
the signal, a class changes (any class change empties the type attribute cache for it): C code
that looks up an attribute with the exception pending then loses it, as it did by chance."""

import importlib.machinery
import signal
import threading
import time

main = threading.main_thread()


def interrupt_the_wait():
    while main.is_alive():  # until the main thread has ended and python waits for this one
        time.sleep(0.01)
    importlib.machinery.ModuleSpec.changed = True  # a cache miss for every lookup on specs
    signal.pthread_kill(main.ident, signal.SIGINT)
    threading.Event().wait()  # still alive: the wait is interrupted, not ended


threading.Thread(target=interrupt_the_wait).start()
print("main done")
