"""``python -m dsrs._cli``: the same as the ``dsrs`` console script."""

import sys

from dsrs._cli import main

sys.exit(main())
