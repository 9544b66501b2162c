"""Token vocabulary shared by the model, the sampler and the dataset.

MiniGrid's seven actions (0..6, ``done`` = 6 included) are real actions. ``MASK`` (7) is the
learned [MASK] input token. ``END`` (8) is the end-of-plan token: window positions after the
expert's plan has ended carry the target ``END``, so the model learns where a plan stops;
``END`` is never sent to the environment. Since ``done`` is a real action (GoTo tasks end with
it), the end of a plan has its own token.

Checkpoints made before 0.5 use the legacy vocabulary: ``done`` (6) doubled as the end-of-plan
target and the input vocabulary stopped at MASK. Their :class:`maze_mdlm.config.ModelConfig`
loads with ``end_token = LEGACY_END``; code that handles plans reads ``model.config.end_token``.
The output head covers every token but MASK, whose logit is fixed very low (``maze_mdlm.model.NEVER_LOGIT``).
"""

from __future__ import annotations

NUM_ACTIONS = 7  # MiniGrid actions 0..6
DONE = 6  # MiniGrid `done`: a real action (GoTo tasks)
MASK = 7  # learned [MASK] input token (never an output)
END = 8  # end-of-plan token (never sent to the env)
VOCAB_SIZE = 9  # 7 actions + MASK + END (inputs and output classes; MASK's logit is fixed very low)
LEGACY_END = 6  # the end-of-plan token of checkpoints made before 0.5 (`done`)
LEGACY_VOCAB_SIZE = 8  # 7 actions + MASK

ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
