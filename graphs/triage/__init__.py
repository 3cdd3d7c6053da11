"""Ticket triage: ``graph.py`` wires the pipeline and exposes ``graph``; ``tickets.py`` is its logic."""

from tierflow.graphs.triage.graph import *  # noqa: F403
from tierflow.graphs.triage.graph import __all__  # noqa: F401
