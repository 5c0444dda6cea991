"""pytest configuration shared by every tier (helpers live in tests/helpers.py)."""

import signal

collect_ignore = ["programs"]

# A job started in the background (CI, `cmd &`) inherits SIGINT ignored, and so would every
# program the tests start: python then installs no KeyboardInterrupt handler and Ctrl-C tests
# hang. The programs start as from a terminal (exec resets a handled signal to its default).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
