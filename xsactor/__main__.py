"""``python -m xsactor``: the command line (see :mod:`xsactor.cli`)."""

import sys

from .cli import main

sys.exit(main())
