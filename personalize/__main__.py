"""``python -m personalize``: see :mod:`personalize.cli` (argument parsing only)."""

import sys

from personalize.cli import main

if __name__ == "__main__":
    sys.exit(main())
