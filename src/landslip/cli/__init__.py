"""The ``landslip`` command line: one thin module per verb, registered in :mod:`.app`."""
