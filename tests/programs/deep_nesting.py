"""Deeply nested containers freed as plain Python frees them (CPython's trashcan): a list
nested a million deep, dicts and sets nested deep, and a 50,000-cell linked list of lists
freed in a thread with a 1 MiB stack."""

import threading


def nested_lists(depth):
    x = []
    for _ in range(depth):
        x = [x]
    return x


def nested_dicts(depth):
    d = {}
    for _ in range(depth):
        d = {"k": d}
    return d


def linked_list(length):
    head = None
    for i in range(length):
        head = [i, head]
    return head


x = nested_lists(1_000_000)
del x
d = nested_dicts(300_000)
del d


def in_small_thread():
    head = linked_list(50_000)
    del head


threading.stack_size(1 << 20)
t = threading.Thread(target=in_small_thread)
t.start()
t.join()
print("freed")
