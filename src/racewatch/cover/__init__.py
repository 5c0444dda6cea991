"""Coverage data: counts and coverage.py files, combine and reports."""
