"""pytest configuration shared by every tier (helpers live in tests/helpers.py)."""

collect_ignore = ["programs"]
