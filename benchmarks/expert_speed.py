"""The expert (A* over the full state) against a navigation-only BFS on a networkx graph.

    python -m benchmarks.expert_speed [--episodes 200]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import envs
from benchmarks.common import write_results
from envs.expert import solve, solve_networkx
from envs.observation import encode_env, env_pose, layout_of


def run(episodes: int = 200, env_ids: tuple[str, ...] = (envs.FOURROOMS_ID, envs.MAZE_ID)) -> list[dict]:
    """Episodes/s of both solvers on the same start states; checks they agree on plan length."""
    rows = []
    for env_id in env_ids:
        env = gym.make(env_id)
        states = []
        for seed in range(episodes):
            env.reset(seed=seed)
            states.append((layout_of(encode_env(env)["image"]), env_pose(env)))
        timings = {}
        for name, solver in (("hand_bfs", solve), ("networkx", solve_networkx)):  # hand_bfs: the A* expert
            start = time.perf_counter()
            lengths = [len(solver(layout, pose)) for layout, pose in states]
            timings[name] = (time.perf_counter() - start, lengths)
        assert timings["hand_bfs"][1] == timings["networkx"][1], "solvers disagree on plan length"
        hand, nx_ = timings["hand_bfs"][0], timings["networkx"][0]
        rows.append({"env": env_id, "episodes": episodes, "hand_bfs_eps": episodes / hand,
                     "networkx_eps": episodes / nx_, "speedup": nx_ / hand})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args(argv)
    rows = run(args.episodes)
    md = "| env | hand BFS episodes/s | networkx episodes/s | hand / networkx |\n|---|---|---|---|\n"
    md += "".join(f"| {r['env']} | {r['hand_bfs_eps']:.0f} | {r['networkx_eps']:.0f} | {r['speedup']:.1f}x |\n"
                  for r in rows)
    print(md)
    write_results("expert_speed", {"rows": rows}, md)


if __name__ == "__main__":
    main()
