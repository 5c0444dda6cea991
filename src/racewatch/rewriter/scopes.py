"""Which module globals are variables (locations), read from the module's source.

A name bound at module level only by `def`, `class` or `import` (functions, classes, modules),
and never named in a `global` statement or deleted, is stable: nothing in the module rebinds it
after import, so reads of it are not instrumented and calling a function or a class costs
nothing extra. Names the module never binds (builtins) are not variables either. Everything
else read as a global - module variables, flags, constants, caches - is a location.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import ast
import contextlib
import tokenize


def global_variables(path):
    """Global names of the module at `path` that are variables, or None (source unreadable:
    then every global read is treated as a variable's)."""
    return module_names(path)[0]


def module_names(path, all_lazy=False):
    """(variables as global_variables says, names an import may bind lazily) of the module at
    `path`; (None, empty) when its source is unreadable. `all_lazy`: the interpreter makes
    every top-level import lazy (`-X lazy_imports=all`)."""
    try:
        with tokenize.open(path) as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None, frozenset()
    return _variables(tree), frozenset(_lazy_imports(tree, all_lazy))


def _lazy_imports(tree, all_lazy):
    """PYVERSIONS: 3.15 (PEP 810) makes lazy the top-level imports marked `lazy` (`is_lazy`),
    those of the modules a top-level `__lazy_modules__` lists, or all of them."""
    listed = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__lazy_modules__" for t in node.targets):
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                listed.update(m for m in ast.literal_eval(node.value) if isinstance(m, str))
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        plain = isinstance(node, ast.Import)
        for alias in node.names:
            module = alias.name if plain else node.module
            if all_lazy or getattr(node, "is_lazy", False) or module in listed:
                yield alias.asname or (alias.name.partition(".")[0] if plain else alias.name)


def _variables(tree):
    variables = set()
    for node in _module_level(tree.body):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                 ast.Import, ast.ImportFrom)):
            variables.update(_bound_names(node))
    for node in _walk(tree):
        if isinstance(node, ast.Global):
            variables.update(node.names)
    return variables


def _walk(tree):
    """Every node of `tree`: ast.walk, without its `from collections import deque` at each
    call (the module being rewritten may be a half-imported collections)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _module_level(body):
    """Statements that run at module level, descending into if/try/with/for/while blocks."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # their bodies are scopes of their own
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(node, field, None) or [])
        for handler in getattr(node, "handlers", None) or []:
            yield from _module_level(handler.body)
        for case in getattr(node, "cases", None) or []:
            yield from _module_level(case.body)


_OWN_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bound_names(node):
    """Names one module-level statement binds or deletes itself; nested statements are
    visited separately, and lambdas and comprehensions have scopes of their own."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, (ast.stmt, *_OWN_SCOPES)):
            continue
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            yield child.id
        elif isinstance(child, ast.ExceptHandler) and child.name:
            yield child.name
        elif isinstance(child, (ast.MatchAs, ast.MatchStar)) and child.name:
            yield child.name
        elif isinstance(child, ast.MatchMapping) and child.rest:
            yield child.rest
        stack.extend(ast.iter_child_nodes(child))
