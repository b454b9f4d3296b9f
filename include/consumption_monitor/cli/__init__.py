"""``cm``: the operators' command line (also ``python -m consumption_monitor``).

``commands`` holds the subcommands, ``parser`` the parser and ``main``, ``args`` the argument
types and the error policy. Every subcommand has ``--help``; those that report something
accept ``--json``. Heavy imports happen inside the subcommand that needs them, so
``cm --help`` is quick.
"""

from consumption_monitor.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
