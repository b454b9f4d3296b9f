"""Batch validation with Great Expectations suites kept as JSON under ``expectations/``.

Great Expectations is imported only inside the functions that run a suite: importing it
costs seconds and must never happen when a DAG file is parsed.
"""
