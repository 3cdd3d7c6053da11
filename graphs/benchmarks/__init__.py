"""Public benchmarks as cascades: the graphs (``graph.py``) and their specs (``specs.py``)."""
