"""Agents for maze-mdlm: every one follows :class:`agents.base.Agent` (``reset``, ``act``)."""

from __future__ import annotations

from agents.base import Agent
from agents.baselines import BFSAgent, RandomAgent
from agents.mctd import MCTDAgent
from agents.mdlm_agent import MDLMAgent

__all__ = ["Agent", "BFSAgent", "MCTDAgent", "MDLMAgent", "RandomAgent"]
