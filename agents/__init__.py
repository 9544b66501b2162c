"""Agents for maze-mdlm: every one follows :class:`agents.base.Agent` (``reset``, ``act``)."""

from __future__ import annotations

from agents.ar_agent import ARAgent
from agents.base import Agent
from agents.baselines import BFSAgent, RandomAgent
from agents.mctd import MCTDAgent
from agents.mdlm_agent import MDLMAgent

__all__ = ["ARAgent", "Agent", "BFSAgent", "MCTDAgent", "MDLMAgent", "RandomAgent"]
