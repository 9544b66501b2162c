"""Pictures of plans and searches (Pillow, the ``render`` extra; imported only when drawing).

* :func:`draw_plans`: an agent's current plan, and MCTD's other candidates faded, as polylines over
  the cells they would visit, on a rendered MiniGrid frame. The cells come from the symbolic
  dynamics (:func:`envs.dynamics.simulate_plans`) run from the frame's layout and pose.
* :func:`draw_search_tree`: an MCTD search tree (nodes, visits, values, meta-actions, the winning
  plan), next to an optional frame.

Both read plain attributes only (``last_plan`` views from :func:`maze_mdlm.evaluation.plan_view`,
the tree's ``Node`` fields), so this module imports nothing from ``agents``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from envs.dynamics import DONE, SUCCESS, FAILURE, simulate_plans

Pose = tuple[int, int, int]
PLAN_COLOR = (255, 196, 0, 235)  # the chosen plan: amber
CANDIDATE_COLOR = (80, 190, 255, 150)  # the other candidates: faded sky blue
WIN_COLOR = (0, 150, 60)
GOAL_FILL, LAVA_FILL, OPEN_FILL = (205, 240, 205), (245, 200, 200), (236, 236, 236)


def plan_cells(layout: np.ndarray, pose: Pose, plans: Sequence[Sequence[int]],
               carrying: Sequence[int] | None = None, task: Sequence[int] | None = None) -> list[list[tuple[int, int]]]:
    """The cells each plan visits from ``pose`` (start cell first, turns collapsed), by the
    symbolic dynamics; a plan stops at the goal, in lava, or at END. ``layout`` [W, H, 3].

    With the observation's ``carrying`` [3] or ``task`` [5] (worlds with keys, doors, boxes), the
    plans run under all seven actions (:func:`envs.dynamics.simulate_world`: pick up the key,
    open the door, walk through); otherwise on the navigation fast path
    (:func:`envs.dynamics.simulate_plans`)."""
    plans = [list(p) for p in plans]
    if not plans:
        return []
    width = max(1, max(len(p) for p in plans))
    padded = np.full((len(plans), width), DONE, dtype=np.int64)  # END pads: execution stops there
    for row, plan in enumerate(plans):
        padded[row, : len(plan)] = plan
    if carrying is None and task is None:
        outcome = simulate_plans(layout, pose, padded)
    else:
        outcome = _simulate_full(layout, pose, padded, carrying, task)
    paths = []
    for row in range(len(plans)):
        cells = [(int(x), int(y)) for x, y in outcome.poses[row, : outcome.steps[row] + 1, :2]]
        paths.append([c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]])
    return paths


def _simulate_full(layout: np.ndarray, pose: Pose, plans: np.ndarray, carrying: Sequence[int] | None,
                   task: Sequence[int] | None) -> Any:
    """:func:`envs.dynamics.simulate_world` from an observation's layout, pose, carrying and task
    (closed boxes count as empty: what they hold is not observed)."""
    from envs.dynamics import simulate_world
    from envs.tasks import MissionError, Task
    from envs.world import NOTHING, WorldState

    held = tuple(int(v) for v in carrying) if carrying is not None else NOTHING
    try:
        bound = Task.from_vector(task).bind(layout) if task is not None else None
    except MissionError:
        bound = None
    return simulate_world(WorldState(layout, tuple(int(v) for v in pose), held), plans, bound, end_token=DONE)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def draw_plans(frame: np.ndarray, layout: np.ndarray, pose: Pose, view: Mapping[str, Any],
               tile: int = 32) -> np.ndarray:
    """``frame`` [H_px, W_px, 3] uint8 with ``view["plan"]`` drawn from ``pose`` (amber, thick) and
    ``view["candidates"]`` from ``view["candidates_pose"]`` (or ``pose``) faded beneath it.
    ``view["carrying"]`` / ``view["task"]`` (optional, from the observation) select the full
    rules (:func:`plan_cells`).

    ``tile`` is the frame's pixels per cell (MiniGrid renders 32). Returns a new array.
    """
    from PIL import Image, ImageDraw

    base = Image.fromarray(np.ascontiguousarray(frame)).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)

    def centre(cell: tuple[int, int]) -> tuple[float, float]:
        return ((cell[0] + 0.5) * tile, (cell[1] + 0.5) * tile)

    def polyline(cells: list[tuple[int, int]], color: tuple[int, ...], width: int) -> None:
        points = [centre(c) for c in cells]
        if len(points) > 1:
            draw.line(points, fill=color, width=width, joint="curve")
        end, r = points[-1], max(2, width)
        draw.ellipse((end[0] - r, end[1] - r, end[0] + r, end[1] + r), fill=color)

    world = {"carrying": view.get("carrying"), "task": view.get("task")}
    candidates_pose = view.get("candidates_pose") or pose
    for cells in plan_cells(layout, tuple(candidates_pose), view.get("candidates") or [], **world):
        polyline(cells, CANDIDATE_COLOR, max(2, tile // 9))
    if view.get("plan"):
        polyline(plan_cells(layout, pose, [view["plan"]], **world)[0], PLAN_COLOR, max(3, tile // 5))
    return np.asarray(Image.alpha_composite(base, overlay).convert("RGB"))


# ----------------------------------------------------------------------------- search tree
def _tree_layout(root: Any) -> dict[int, tuple[float, int]]:
    """``id(node) -> (x slot, depth)``: leaves take consecutive slots depth first in meta-action
    order, a parent sits above the middle of its children."""
    slots: dict[int, tuple[float, int]] = {}
    next_leaf = [0.0]

    def place(node: Any) -> float:
        kids = [node.children[m] for m in sorted(node.children) if not node.children[m].pending]
        if not kids:
            x = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            xs = [place(k) for k in kids]
            x = (xs[0] + xs[-1]) / 2.0
        slots[id(node)] = (x, node.depth)
        return x

    place(root)
    return slots


def draw_search_tree(result: Any, meta_labels: Sequence[str], title: str = "",
                     frame: np.ndarray | None = None):
    """An MCTD search tree as a ``PIL.Image``: one box per node (visits ``n``, backed-up value
    ``v``, own simulated score ``s`` and whether its plan reached the goal), edges labelled with
    the meta-action that made the child, and the winning plan's path from the root in green.

    Args:
        result: an :class:`agents.mctd.planner.SearchResult` (``root``, ``best``, ``expansions``,
            ``rounds``, ``seconds``, ``found_goal``).
        meta_labels: one short label per meta-action index (e.g. ``"w=2"``).
        title: a line above the tree.
        frame: an optional picture (e.g. the first frame with the plans drawn) put on the left.
    """
    from PIL import Image, ImageDraw

    slots = _tree_layout(result.root)
    winners = set()
    walk = result.best
    while walk is not None:
        winners.add(id(walk))
        walk = walk.parent
    box_w, box_h, gap_x, gap_y, margin, top = 128, 62, 18, 74, 24, 70
    leaves = max(x for x, _ in slots.values()) + 1
    depth = max(d for _, d in slots.values())
    tree_w = int(leaves * (box_w + gap_x) - gap_x + 2 * margin)
    tree_h = int(top + (depth + 1) * (box_h + gap_y) - gap_y + margin + 60)
    left = 0 if frame is None else frame.shape[1] + margin
    height = max(tree_h, 0 if frame is None else frame.shape[0] + top + margin)
    image = Image.new("RGB", (left + tree_w, height), "white")
    draw = ImageDraw.Draw(image)
    font, small, big = _font(14), _font(12), _font(17)
    if frame is not None:
        image.paste(Image.fromarray(np.ascontiguousarray(frame)), (margin // 2, top))
    draw.text((margin // 2, 14), title, fill="black", font=big)
    summary = (f"{result.expansions} expansions in {result.rounds} rounds, {1000 * result.seconds:.0f} ms; "
               f"goal found: {'yes' if result.found_goal else 'no'}")
    draw.text((margin // 2, 40), summary, fill=(60, 60, 60), font=font)

    def box(node: Any) -> tuple[float, float, float, float]:
        x, d = slots[id(node)]
        x0 = left + margin + x * (box_w + gap_x)
        y0 = top + d * (box_h + gap_y)
        return x0, y0, x0 + box_w, y0 + box_h

    nodes = [n for n in result.root.iter_nodes() if not n.pending]
    for node in nodes:  # edges first, boxes on top
        if node.parent is None:
            continue
        px0, _, px1, py1 = box(node.parent)
        x0, y0, x1, _ = box(node)
        won = id(node) in winners
        start, end = ((px0 + px1) / 2, py1), ((x0 + x1) / 2, y0)
        draw.line([start, end], fill=WIN_COLOR if won else (150, 150, 150), width=4 if won else 1)
        label = meta_labels[node.meta_action] if node.meta_action is not None else "?"
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        tw = draw.textlength(label, font=small)
        draw.rectangle((mx - tw / 2 - 2, my - 8, mx + tw / 2 + 2, my + 8), fill="white")
        draw.text((mx - tw / 2, my - 7), label, fill=WIN_COLOR if won else (90, 90, 90), font=small)
    for node in nodes:
        x0, y0, x1, y1 = box(node)
        status = node.outcome[0] if node.outcome is not None else None
        fill = GOAL_FILL if status == SUCCESS else LAVA_FILL if status == FAILURE else OPEN_FILL
        won = id(node) in winners
        draw.rounded_rectangle((x0, y0, x1, y1), radius=6, fill=fill, outline=WIN_COLOR if won else (80, 80, 80),
                               width=4 if won else 1)
        if node.parent is None:
            lines = ["root", f"n={node.visits}  v={node.value:.3f}"]
        else:
            reached = "goal" if status == SUCCESS else "lava" if status == FAILURE else "no goal"
            lines = [f"n={node.visits}  v={node.value:.3f}", f"s={node.own_value:.3f} {reached}"]
            if node is result.best:
                lines.append("WINNER")
        for i, text in enumerate(lines):
            tw = draw.textlength(text, font=font)
            draw.text(((x0 + x1 - tw) / 2, y0 + 5 + 18 * i), text,
                      fill=WIN_COLOR if text == "WINNER" else "black", font=font)
    legend = ("n: visits   v: value (max backup)   s: the node's own simulated plan score   "
              "green box: plan reaches the goal   green path: the winning plan")
    draw.text((left + margin, height - margin - 14), legend, fill=(60, 60, 60), font=small)
    return image
