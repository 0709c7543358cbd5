"""The backtesting engine: pure numpy/pandas; no web, database, queue or logging
framework.

Usable from a notebook, a CLI, a worker or a test with nothing else running.
"""
