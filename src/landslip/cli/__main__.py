"""``python -m landslip.cli``."""

import sys

from landslip.cli.app import main

sys.exit(main())
