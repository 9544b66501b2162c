#!/bin/bash
# maze_mdlm/checkpoints/long_worlds.pt (0.22): the MDLM of the suite's long key and room worlds
# (MultiRoom-N6, KeyCorridorS4R3-S6R3), the shipped generalist (suite.pt) fine-tuned on them alone,
# exactly as it was run (2-core CPU; collection with --workers 1 beside another job, hence its times).
# Usage: bash docs/long_recipe.sh OUT_DIR     (2.4 + 44 min of collection, 16.8 min of training here)
set -euo pipefail
D=${1:?usage: long_recipe.sh OUT_DIR}
mkdir -p "$D"
L="--env MiniGrid-MultiRoom-N6-v0 --env MiniGrid-KeyCorridorS4R3-v0 --env MiniGrid-KeyCorridorS5R3-v0 --env MiniGrid-KeyCorridorS6R3-v0"
C="maze-mdlm collect-data $L --grid-size 25 --workers 1"
T="--batch-size 128 --horizon 12 --env-weighting envs --eval-episodes 0 --val-every 500 --seed 0 --device cpu"
# expert episodes at seeds no earlier stage used (20000-22999), and DAgger starts of suite.pt's greedy
# policy, states with a key in hand labelled too (seeds 24000-24999)
$C --episodes 3000 --seed 20000 --out "$D/long-expert.mdd"
$C --episodes 1000 --seed 24000 --on-policy maze_mdlm/checkpoints/suite.pt --on-policy-holding --out "$D/long-on-policy.mdd"
OMP_NUM_THREADS=2 maze-mdlm train --data "$D/long-expert.mdd" --data "$D/long-on-policy.mdd" \
  --init maze_mdlm/checkpoints/suite.pt --out "$D/long_ft" --steps 6000 --lr 5e-4 $T
maze-mdlm export --checkpoint "$D/long_ft/checkpoint.pt" --out maze_mdlm/checkpoints/long_worlds.pt
