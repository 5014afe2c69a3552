"""Support for tests, notebooks and benchmarks: nothing a ``forecast`` command imports.

:mod:`forecast.testing.simulate` draws count panels from known parameters.  This package sits
above every floor of the runtime package (``tests/test_architecture.py`` keeps it so): it may
import any of them, and none of them may import it.
"""
