"""Benchmarks: ``make bench`` (``python -m bench``) runs every ``bench/bench_*.py``.

Each module defines ``run(report)``; it measures on this machine and calls
``report.add(group, name, value, unit, limit=None, limit_name=None)`` for each
figure, with the raw primitive limit measured in the same run where one applies.
"""
