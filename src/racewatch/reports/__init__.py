"""Reports in their JSON form: the stream schema, text and SARIF renderings, `racewatch report`."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
