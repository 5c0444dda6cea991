"""An uncaught KeyboardInterrupt: Python prints the traceback and dies of SIGINT."""

print("working")
raise KeyboardInterrupt
