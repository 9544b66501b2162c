"""maze-mdlm: masked discrete diffusion (MDLM) policies and tree search for MiniGrid navigation.

Importing this package also registers the ``envs`` package's gymnasium environments.
"""

from __future__ import annotations

import envs  # noqa: F401  (registers MazeMDLM/Maze-19x19-v0)

__version__ = "0.34.0"
