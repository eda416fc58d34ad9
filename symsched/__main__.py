"""``python -m symsched``: the same command line as the ``symsched`` script (:func:`symsched.cli.console_main`)."""

from .cli import console_main

if __name__ == "__main__":
    console_main()
