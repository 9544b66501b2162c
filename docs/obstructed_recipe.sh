#!/bin/bash
# maze_mdlm/checkpoints/obstructed.pt (0.23, second round 0.24): the MDLM of the six trained ObstructedMaze ids with hidden
# keys whose mctd path ratio or mdlm success missed their targets with the generalist (2Dlh, 2Dlhb-v1,
# 1Q-v1, 2Q-v1, Full-v0, Full-v1): the shipped generalist (suite.pt) fine-tuned on them alone, the
# long_worlds recipe with the guessing expert (--box-guess), exactly as it was run (2-core CPU).
# The zero-shot v0 ids (2Dlhb, 1Q, 2Q) stay out of the data.
# 0.24: a second DAgger round from that model (its greedy policy's states at seeds 33000-33499), then 6000
# more steps on all three files.
# Usage: bash docs/obstructed_recipe.sh OUT_DIR     (10.7 + 43.5 + 22.3 min of collection, 18.7 + 19.5 min of
# training here)
set -euo pipefail
D=${1:?usage: obstructed_recipe.sh OUT_DIR}
mkdir -p "$D"
L=""
for e in 2Dlh-v0 2Dlhb-v1 1Q-v1 2Q-v1 Full-v0 Full-v1; do L="$L --env MiniGrid-ObstructedMaze-$e"; done
C="maze-mdlm collect-data $L --grid-size 25 --workers 2 --box-guess"
T="--batch-size 128 --horizon 12 --env-weighting envs --eval-episodes 0 --val-every 500 --seed 0 --device cpu"
# expert episodes at seeds no earlier stage used (30000-31499), and DAgger starts of suite.pt's greedy
# policy, states with an object in hand labelled too (seeds 32000-32499)
$C --episodes 1500 --seed 30000 --out "$D/om-expert.mdd"
$C --episodes 500 --seed 32000 --on-policy maze_mdlm/checkpoints/suite.pt --on-policy-holding --out "$D/om-on-policy.mdd"
OMP_NUM_THREADS=2 maze-mdlm train --data "$D/om-expert.mdd" --data "$D/om-on-policy.mdd" \
  --init maze_mdlm/checkpoints/suite.pt --out "$D/om_ft" --steps 6000 --lr 5e-4 $T
maze-mdlm export --checkpoint "$D/om_ft/checkpoint.pt" --out "$D/obstructed_r1.pt"  # 0.23's obstructed.pt
# round 2 (0.24): DAgger starts of round 1's greedy policy at seeds 33000-33499, then 6000 steps from round 1
$C --episodes 500 --seed 33000 --on-policy "$D/obstructed_r1.pt" --on-policy-holding --out "$D/om-on-policy2.mdd"
OMP_NUM_THREADS=2 maze-mdlm train --data "$D/om-expert.mdd" --data "$D/om-on-policy.mdd" --data "$D/om-on-policy2.mdd" \
  --init "$D/obstructed_r1.pt" --out "$D/om_ft2" --steps 6000 --lr 5e-4 $T
maze-mdlm export --checkpoint "$D/om_ft2/checkpoint.pt" --out maze_mdlm/checkpoints/obstructed.pt
