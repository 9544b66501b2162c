"""Seed ranges. Training data and evaluation never share a reset seed.

* ``collect-data`` (training data): reset seeds ``[0, 1_000_000)``; default ``--seed 0``.
* ``rollout`` and the benchmarks (held-out evaluation): ``1_000_000`` and up; default ``--seed 1_000_000``.
* In-training success checks (validation): ``2_000_000`` and up.
"""

from __future__ import annotations

TRAIN_SEED_START = 0
TRAIN_SEED_END = 1_000_000  # exclusive
EVAL_SEED_START = 1_000_000
VAL_SEED_START = 2_000_000
