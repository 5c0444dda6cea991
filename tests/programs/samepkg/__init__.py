"""`python -m samepkg`: the frames runpy leaves below a package's __main__ (semantic identity)."""
