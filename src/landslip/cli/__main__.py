"""``python -m landslip.cli``."""

from landslip.cli.app import run

run()
