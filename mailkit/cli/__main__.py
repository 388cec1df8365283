"""``python -m mailkit.cli``: the same command line as the ``mailkit`` script."""

import sys

from mailkit.cli import main

sys.exit(main())
