"""`python -m pyramid_lib ...`: the same command line as `pyramid-ad ...` (cli.py)."""

import sys

from .cli import main

sys.exit(main())
