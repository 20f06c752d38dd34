"""``python -m dsrs``: the ``dsrs`` command line (see ``dsrs --help``)."""

import sys

from dsrs._cli import main

sys.exit(main())
