"""``python -m helpers.cli``: the driftgate command without its console script."""

import sys

from helpers.cli.main import main

sys.exit(main())
