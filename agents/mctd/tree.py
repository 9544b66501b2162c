"""The search tree of Monte Carlo Tree Diffusion: nodes, UCT selection, max backup.

Pure data structure and small functions (numpy only, no torch). Shapes: H plan horizon,
S number of sub-plans (H = S * sub-plan length), M number of meta-actions.

A node holds a partially denoised plan ``tokens [H]``: a node at depth ``d`` has sub-plans
``0..d-1`` denoised and MASK everywhere else (the root, depth 0, is all MASK; a node at depth
S is a complete plan and is terminal). Each non-terminal node owns one child slot per
meta-action (a guidance level); expanding slot ``m`` denoises sub-plan ``d`` under
meta-action ``m``.

Statistics, precisely:

* ``simulations``: how many times this node's own plan was completed by jumpy denoising and
  scored (1 for every expanded node, 0 for the root and for placeholders).
* ``visits = simulations + sum(child.visits for child in children)``: every simulation
  backs up one visit along the path from the simulated node to the root.
* ``own_value``: score of this node's own simulated plan, in [0, 1] (None until simulated).
* ``value = max(own_value, max(child.value))`` (max backup, as in the official MCTD code);
  0.0 while nothing below the node has been scored.
* ``virtual``: virtual visits of parallel selection (Fast-MCTD's P-MCTD). While a round's
  K selections are pending, every node on a selected path counts them as visits in UCT, so
  the next selection leans elsewhere; they are removed when the round's results are backed
  up, so they are all zero between rounds.

Selection (:func:`select_expansion`) descends only into fully expanded nodes: at a node
with an unexpanded meta-action, that meta-action is what gets expanded; otherwise the child
with the highest UCT score is entered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

MASK = 7  # maze_mdlm.tokens.MASK (duplicated so that this module needs no torch)
DEFAULT_EXPLORATION = math.sqrt(2.0)


def subplan_bounds(horizon: int, num_subplans: int, index: int) -> tuple[int, int]:
    """``[start, stop)`` positions of sub-plan ``index`` in a plan of ``horizon`` tokens.

    Sub-plans are contiguous and as equal as possible (the first ``horizon % num_subplans``
    ones are one token longer).
    """
    if not 1 <= num_subplans <= horizon:
        raise ValueError(f"num_subplans must be in [1, horizon={horizon}], got {num_subplans}")
    if not 0 <= index < num_subplans:
        raise ValueError(f"sub-plan index {index} out of range [0, {num_subplans})")
    base, extra = divmod(horizon, num_subplans)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


@dataclass(eq=False)
class Node:
    """One partially denoised plan in the search tree.

    Attributes:
        tokens: ``[H]`` int64, sub-plans ``0..depth-1`` denoised, MASK elsewhere; None while
            the node is a pending placeholder (selected this round, not yet denoised).
        depth: number of denoised sub-plans.
        num_meta: number of meta-actions M (child slots).
        parent: None for the root.
        meta_action: index of the meta-action that created this node (None for the root).
        children: meta-action index -> child.
        plan: ``[H]`` complete plan from this node's own simulation (None until simulated).
        outcome: ``(status, steps)`` of that plan under the dynamics.
    """

    tokens: np.ndarray | None
    depth: int
    num_meta: int
    parent: Node | None = None
    meta_action: int | None = None
    children: dict[int, Node] = field(default_factory=dict)
    visits: int = 0
    simulations: int = 0
    value: float = 0.0
    own_value: float | None = None
    virtual: int = 0
    plan: np.ndarray | None = None
    outcome: tuple[int, int] | None = None
    exhausted: bool = False  # nothing left to expand anywhere below (set by backup)

    @property
    def pending(self) -> bool:
        """A placeholder selected in the current round and not yet denoised."""
        return self.tokens is None

    def is_terminal(self, num_subplans: int) -> bool:
        """Every sub-plan is denoised: nothing left to expand."""
        return self.depth >= num_subplans

    def unexpanded(self) -> list[int]:
        """Meta-actions without a child (pending placeholders count as expanded)."""
        return [m for m in range(self.num_meta) if m not in self.children]

    def iter_nodes(self) -> Iterator[Node]:
        """This node and every node below it, depth first (placeholders included)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children[m] for m in sorted(node.children, reverse=True))


def new_root(horizon: int, num_meta: int) -> Node:
    """All-MASK root at depth 0."""
    if num_meta < 1:
        raise ValueError(f"a node needs at least one meta-action, got {num_meta}")
    return Node(tokens=np.full(horizon, MASK, dtype=np.int64), depth=0, num_meta=num_meta)


def uct_score(child: Node, parent: Node, exploration: float = DEFAULT_EXPLORATION) -> float:
    """UCT of ``child``: ``value + c * sqrt(ln(N_parent) / n_child)``, virtual visits included.

    ``n`` counts real plus virtual visits, so a child on a path already selected this round
    gets a smaller exploration bonus (Fast-MCTD's virtual visits). A child that has never been
    visited scores +inf.
    """
    n_child = child.visits + child.virtual
    if n_child == 0:
        return math.inf
    n_parent = max(parent.visits + parent.virtual, 1)
    return child.value + exploration * math.sqrt(math.log(n_parent) / n_child)


def select_expansion(
    root: Node, num_subplans: int, exploration: float = DEFAULT_EXPLORATION
) -> tuple[Node, int] | None:
    """Pick ``(node, meta_action)`` to expand next, or None if nothing can be selected now.

    From the root: at a node with an unexpanded meta-action, return the first one (in
    meta-action order). At a fully expanded node, enter the child with the best UCT score
    among those that are neither pending nor exhausted; if that subtree has nothing to offer
    (everything below is pending), try the next best. Terminal nodes are never expanded.
    """
    if root.exhausted or root.is_terminal(num_subplans):
        return None
    free = root.unexpanded()
    if free:
        return root, free[0]
    candidates = [c for c in root.children.values() if not c.pending and not c.exhausted]
    # ties broken by meta-action order, so that selection is deterministic
    candidates.sort(key=lambda c: (-uct_score(c, root, exploration), c.meta_action))
    for child in candidates:
        found = select_expansion(child, num_subplans, exploration)
        if found is not None:
            return found
    return None


def add_placeholder(node: Node, meta_action: int) -> Node:
    """Reserve ``node``'s slot ``meta_action`` for this round and add one virtual visit to
    the placeholder and to every node on its path to the root."""
    if meta_action in node.children:
        raise ValueError(f"meta-action {meta_action} of this node is already expanded")
    child = Node(tokens=None, depth=node.depth + 1, num_meta=node.num_meta, parent=node, meta_action=meta_action)
    node.children[meta_action] = child
    walk: Node | None = child
    while walk is not None:
        walk.virtual += 1
        walk = walk.parent
    return child


def backup(child: Node, tokens: np.ndarray, plan: np.ndarray, outcome: tuple[int, int],
           value: float, num_subplans: int) -> None:
    """Fill a placeholder with its denoised ``tokens`` and scored simulation, then back up.

    The child gets one simulation and one visit; every ancestor gets one visit, its virtual
    visit removed and ``value = max(own_value, children's values)``. ``exhausted`` is
    refreshed on the way up.
    """
    if not child.pending:
        raise ValueError("backup expects a pending placeholder")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"values must lie in [0, 1], got {value}")
    child.tokens = np.asarray(tokens, dtype=np.int64).copy()
    child.plan = np.asarray(plan, dtype=np.int64).copy()
    child.outcome = (int(outcome[0]), int(outcome[1]))
    child.own_value = float(value)
    child.simulations += 1
    walk: Node | None = child
    while walk is not None:
        walk.visits += 1
        walk.virtual -= 1
        walk.value = node_value(walk)
        walk.exhausted = is_exhausted(walk, num_subplans)
        walk = walk.parent


def node_value(node: Node) -> float:
    """Max backup: the best of the node's own score and its scored children's values."""
    scores = [c.value for c in node.children.values() if c.visits > 0]
    if node.own_value is not None:
        scores.append(node.own_value)
    return max(scores, default=0.0)


def is_exhausted(node: Node, num_subplans: int) -> bool:
    """Terminal, or fully expanded with every child exhausted (pending ones are not)."""
    if node.is_terminal(num_subplans):
        return True
    if len(node.children) < node.num_meta:
        return False
    return all(not c.pending and c.exhausted for c in node.children.values())


def best_node(root: Node) -> Node | None:
    """The simulated node with the highest own score, or None. Ties go to the node met first
    depth-first in meta-action order (deterministic)."""
    best = None
    for node in root.iter_nodes():
        if node.own_value is not None and (best is None or node.own_value > best.own_value):
            best = node
    return best


def tree_stats(root: Node) -> dict[str, int]:
    """``nodes`` (expanded, root excluded) and ``max_depth`` of a tree."""
    nodes = [n for n in root.iter_nodes() if n is not root and not n.pending]
    return {"nodes": len(nodes), "max_depth": max((n.depth for n in nodes), default=0)}


def check_invariants(root: Node, num_subplans: int, atol: float = 1e-12) -> None:
    """Raise ``AssertionError`` unless every node satisfies the statistics documented in
    this module's docstring (visits, max backup, values in [0, 1], zero virtual visits,
    tokens denoised exactly in sub-plans ``0..depth-1``)."""
    horizon = len(root.tokens)
    for node in root.iter_nodes():
        assert not node.pending, "a placeholder was left in the tree"
        assert node.virtual == 0, f"virtual visits left: {node.virtual}"
        child_visits = sum(c.visits for c in node.children.values())
        assert node.visits == node.simulations + child_visits, (
            f"visits {node.visits} != simulations {node.simulations} + children {child_visits}")
        assert 0.0 <= node.value <= 1.0, f"value {node.value} outside [0, 1]"
        assert abs(node.value - node_value(node)) <= atol, "max backup violated"
        stop = subplan_bounds(horizon, num_subplans, node.depth - 1)[1] if node.depth else 0
        assert (node.tokens[:stop] != MASK).all() and (node.tokens[stop:] == MASK).all(), (
            f"depth-{node.depth} node must have exactly its first {stop} tokens denoised")
        if node.parent is not None:
            parent_stop = subplan_bounds(horizon, num_subplans, node.parent.depth - 1)[1] if node.parent.depth else 0
            assert (node.tokens[:parent_stop] == node.parent.tokens[:parent_stop]).all(), (
                "a child changed its parent's denoised tokens")
