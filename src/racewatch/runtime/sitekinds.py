"""Per-site flags: what the rewriter tells the runtime about each probe site (one byte each)."""

ATTR = 1     # an attribute access: objects that cannot hold attributes of their own are skipped
SUPER = 2    # `super().name`: the location is the class attribute the lookup finds
GLOBAL = 4   # a module global of the calling frame (the probe passes no object)
ATOMIC = 8   # a builtin container's atomic operation: never races with another atomic access
