#!/bin/bash
# maze_mdlm/checkpoints/maze25.pt (0.21): the MDLM of the three 25x25 mazes, the shipped generalist
# (suite.pt) fine-tuned on them alone, exactly as it was run (2-core CPU, 2 torch threads, alone).
# Usage: bash docs/maze25_recipe.sh OUT_DIR     (1.1 + 7.7 + 7.2 min of collection, 17.9 + 17.8 min of training here)
set -euo pipefail
D=${1:?usage: maze25_recipe.sh OUT_DIR}
mkdir -p "$D"
M="--env MazeMDLM/Maze-25x25-v0 --env MazeMDLM/BraidMaze-25x25-v0 --env MazeMDLM/LavaMaze-25x25-v0"
C="maze-mdlm collect-data $M --grid-size 25 --workers 2"
T="--batch-size 128 --horizon 12 --env-weighting envs --eval-episodes 0 --val-every 500 --seed 0 --device cpu"
# expert episodes at seeds no earlier stage used (10000-13999), and DAgger starts of suite.pt's greedy policy
$C --episodes 4000 --seed 10000 --out "$D/maze25-expert.mdd"
$C --episodes 1000 --seed 14000 --on-policy maze_mdlm/checkpoints/suite.pt --out "$D/maze25-on-policy.mdd"
OMP_NUM_THREADS=2 maze-mdlm train --data "$D/maze25-expert.mdd" --data "$D/maze25-on-policy.mdd" \
  --init maze_mdlm/checkpoints/suite.pt --out "$D/maze25_ft" --steps 6000 --lr 5e-4 $T
maze-mdlm export --checkpoint "$D/maze25_ft/checkpoint.pt" --out "$D/maze25.pt"
# a second DAgger round: the first fine-tune's greedy policy at seeds 15000-15999, then 6000 more steps
$C --episodes 1000 --seed 15000 --on-policy "$D/maze25.pt" --out "$D/maze25-on-policy2.mdd"
OMP_NUM_THREADS=2 maze-mdlm train --data "$D/maze25-expert.mdd" --data "$D/maze25-on-policy.mdd" \
  --data "$D/maze25-on-policy2.mdd" --init "$D/maze25_ft/checkpoint.pt" --out "$D/maze25_ft2" --steps 6000 --lr 5e-4 $T
maze-mdlm export --checkpoint "$D/maze25_ft2/checkpoint.pt" --out maze_mdlm/checkpoints/maze25.pt
