"""The arithmetic of a benchmark report: confidence intervals, random routing, threshold sweeps."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["wilson", "random_mix", "threshold_sweep"]


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n.

    Example:
        >>> [round(v, 3) for v in wilson(45, 50)]
        [0.786, 0.957]
    """
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def random_mix(cheap_cost: float, top_cost: float, target_cost: float) -> float:
    """Share of items random routing sends to the flagship to spend ``target_cost``.

    Example:
        >>> random_mix(10.0, 110.0, 35.0)
        0.25
    """
    if top_cost <= cheap_cost:
        return 1.0
    return min(1.0, max(0.0, (target_cost - cheap_cost) / (top_cost - cheap_cost)))


def threshold_sweep(
    p_cheap: Sequence[float],
    cheap_path: Sequence[tuple[float, float]],
    top_path: Sequence[tuple[float, float]],
) -> list[tuple[float, float, float]]:
    """(threshold, total cost, mean quality) for each threshold over the items' ``p_cheap``.

    Item i starts cheap when ``p_cheap[i] >= threshold`` and then scores ``cheap_path[i]``
    (quality, cost), else ``top_path[i]``; a threshold of 1.0 sends every item to the top.

    Example:
        >>> threshold_sweep([0.9, 0.2], [(1, 1), (0, 1)], [(1, 10), (1, 10)])
        [(0.0, 2.0, 0.5), (0.2, 2.0, 0.5), (0.9, 11.0, 1.0), (1.0, 20.0, 1.0)]
    """
    n = len(p_cheap)
    sweep = []
    for theta in sorted({*p_cheap, 1.0, 0.0}):
        q = c = 0.0
        for p, cheap, top in zip(p_cheap, cheap_path, top_path, strict=True):
            quality, cost = cheap if p >= theta else top
            q, c = q + quality, c + cost
        sweep.append((round(theta, 6), c, q / n if n else 0.0))
    return sweep
