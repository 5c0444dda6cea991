"""How deep a recursion gets before RecursionError, with and without a probed access (an
attribute read of a global object) at every level: printed for test_python_runtime.py."""


class Node:
    pass


node = Node()
node.value = 0


def probed(n):
    node.value
    try:
        return probed(n + 1)
    except RecursionError:
        return n


def unprobed(n):
    try:
        return unprobed(n + 1)
    except RecursionError:
        return n


print(probed(0), unprobed(0))
