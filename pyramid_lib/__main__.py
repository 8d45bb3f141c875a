"""`python -m pyramid_lib ...`: the same command line as `pyramid-ad ...` (cli.py)."""

import signal
import sys


def _stop(signum, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _stop)  # until cli.main takes over: a stop during the imports is a clean one too
try:
    from .cli import main
except KeyboardInterrupt:
    print("pyramid-ad: interrupted while starting; nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
