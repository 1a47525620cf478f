"""``python -m s4_codec``: the ``s4-codec`` command."""

import sys

from s4_codec.cli import main

if __name__ == "__main__":
    sys.exit(main())
