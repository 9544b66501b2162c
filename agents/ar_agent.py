"""ARAgent: the autoregressive behaviour-cloning baseline in the same closed loop as MDLMAgent."""

from __future__ import annotations

from torch import Tensor

from agents.mdlm_agent import MDLMAgent
from maze_mdlm.ar import generate


class ARAgent(MDLMAgent):
    """MDLMAgent's loop (receding horizon, replanning on a surprising world state, first-action
    rules, END handling, carried object and task as inputs, batching) around an
    :class:`maze_mdlm.ar.ARPolicy`: only the model call differs.

    A plan is decoded left to right, and only its first ``execute`` actions are decoded: the
    loop throws the rest away, and in greedy mode the first k tokens do not depend on the later
    ones. With the default ``execute=1`` that is one forward pass per decision.
    """

    name = "ar"
    model_type = "ar"

    def sample_plans(self, grid: Tensor, direction: Tensor, forbid: Tensor | None,
                     carrying: Tensor | None = None, task: Tensor | None = None) -> Tensor:
        """grid [B, 3, G, G], direction [B], forbid [B, H, V] | None, carrying [B, 3] | None,
        task [B, 5] | None -> actions [B, execute] ([B, H] with ``full_plans``)."""
        length = self.horizon if self.full_plans else min(self.execute, self.horizon)
        return generate(self.model, grid, direction, length, temperature=self.temperature,
                        generator=self.generator, forbid=forbid, carrying=carrying, task=task)
