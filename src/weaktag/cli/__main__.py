"""``python -m weaktag.cli``."""

import sys

from . import main

sys.exit(main())
