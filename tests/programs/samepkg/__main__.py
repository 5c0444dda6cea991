import inspect
import sys
import warnings

print("module stack:", [frame.function for frame in inspect.stack()])
print("caller:", sys._getframe(1).f_code.co_name)
warnings.warn("attributed to runpy's frame", stacklevel=2)
sys.setrecursionlimit(150)


def deepest(n=0):
    try:
        return deepest(n + 1)
    except RecursionError:
        return n


print("recursion depth reached under limit 150:", deepest())
raise SystemExit(sys.argv[1:])
