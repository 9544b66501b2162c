"""Action-token vocabulary shared by the model, the sampler and the dataset.

MiniGrid's seven actions are the output classes. MiniGrid's own ``done`` action (6)
doubles as the learned end-of-plan token: window positions after the expert reaches the
goal carry the target ``END``, so the model learns where a plan stops. ``END`` is never
sent to the environment. ``MASK`` is an input-only token: the output head covers the
seven actions, so the model can never produce it.
"""

from __future__ import annotations

NUM_ACTIONS = 7  # MiniGrid actions 0..6 = output classes of the policy head
END = 6  # MiniGrid `done`, used as the end-of-plan target
MASK = 7  # learned [MASK] input token (never an output)
VOCAB_SIZE = 8  # input vocabulary: 7 actions + MASK

ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
