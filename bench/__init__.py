"""Benchmarks (``make bench``): figures as ratios against baselines measured in the same run.

Each benchmark module exposes ``run() -> list[Record]``; ``python -m bench`` runs them all,
prints a table and writes ``bench/results.json`` (git-ignored).
"""
