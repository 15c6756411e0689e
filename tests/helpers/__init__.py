"""Helpers shared by the tests (and the benchmarks): generated data, not part of landslip."""
