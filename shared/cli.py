"""``python -m shared.cli``: the operator CLI's short name (``shared.host.cli``)."""

import sys

from shared.host.cli import main

if __name__ == "__main__":
    sys.exit(main())
