"""`python -m memgru` entry point."""

import sys

from memgru.cli import main

sys.exit(main())
