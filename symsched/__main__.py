"""``python -m symsched``: the same command line as the ``symsched`` script (:func:`symsched.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
