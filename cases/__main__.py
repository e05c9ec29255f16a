"""``python -m cases``: the casebook's command line (see cases.cli)."""

import sys

from cases.cli import main

if __name__ == "__main__":
    sys.exit(main())
