#!/bin/bash
# The shipped generalist (maze_mdlm/checkpoints/suite.pt, suite_ar.pt): data and training, exactly as
# they were run (2-core CPU, one torch thread per training run, the MDLM and AR runs side by side).
# Usage: bash docs/suite_recipe.sh OUT_DIR     (16 + 9 + 6 + 10 + 19 min of collection, then about 65 + 60 + 100 + 40 + 41 + 61 + 60 + 35 + 28 + 30 min of training here)
set -euo pipefail
D=${1:?usage: suite_recipe.sh OUT_DIR}
mkdir -p "$D"
C="maze-mdlm collect-data --grid-size 25 --seed 0 --workers 2"
$C --episodes 1000 --out "$D/keys.mdd" \
  --env MiniGrid-DoorKey-5x5-v0 --env MiniGrid-DoorKey-6x6-v0 --env MiniGrid-DoorKey-8x8-v0 --env MiniGrid-DoorKey-16x16-v0 \
  --env MiniGrid-LockedRoom-v0 --env MiniGrid-Unlock-v0 --env MiniGrid-UnlockPickup-v0 --env MiniGrid-BlockedUnlockPickup-v0 \
  --env MiniGrid-KeyCorridorS3R1-v0 --env MiniGrid-KeyCorridorS3R2-v0 --env MiniGrid-KeyCorridorS3R3-v0 \
  --env MiniGrid-KeyCorridorS4R3-v0 --env MiniGrid-KeyCorridorS5R3-v0 --env MiniGrid-KeyCorridorS6R3-v0
$C --episodes 1000 --out "$D/nav.mdd" \
  --env MazeMDLM/Maze-19x19-v0 --env MazeMDLM/BraidMaze-19x19-v0 --env MazeMDLM/LavaMaze-19x19-v0 \
  --env MazeMDLM/Maze-25x25-v0 --env MazeMDLM/BraidMaze-25x25-v0 --env MazeMDLM/LavaMaze-25x25-v0 \
  --env MiniGrid-FourRooms-v0 --env MiniGrid-Empty-5x5-v0 --env MiniGrid-Empty-Random-5x5-v0 --env MiniGrid-Empty-6x6-v0 \
  --env MiniGrid-Empty-Random-6x6-v0 --env MiniGrid-Empty-8x8-v0 --env MiniGrid-LavaGapS5-v0 --env MiniGrid-LavaGapS6-v0 \
  --env MiniGrid-LavaGapS7-v0 --env MiniGrid-LavaCrossingS9N1-v0 --env MiniGrid-LavaCrossingS9N2-v0 --env MiniGrid-LavaCrossingS9N3-v0 \
  --env MiniGrid-SimpleCrossingS9N1-v0 --env MiniGrid-SimpleCrossingS9N2-v0 --env MiniGrid-SimpleCrossingS9N3-v0 \
  --env MiniGrid-DistShift1-v0 --env MiniGrid-DistShift2-v0 \
  --env MiniGrid-MultiRoom-N2-S4-v0 --env MiniGrid-MultiRoom-N4-S5-v0 --env MiniGrid-MultiRoom-N4-S5-v1 --env MiniGrid-MultiRoom-N6-v0
$C --episodes 1000 --out "$D/missions.mdd" \
  --env MiniGrid-Fetch-5x5-N2-v0 --env MiniGrid-Fetch-6x6-N2-v0 --env MiniGrid-Fetch-8x8-N3-v0 \
  --env MiniGrid-GoToDoor-5x5-v0 --env MiniGrid-GoToDoor-6x6-v0 --env MiniGrid-GoToDoor-8x8-v0 \
  --env MiniGrid-GoToObject-6x6-N2-v0 --env MiniGrid-GoToObject-8x8-N2-v0 \
  --env MiniGrid-PutNear-6x6-N2-v0 --env MiniGrid-PutNear-8x8-N3-v0 \
  --env MiniGrid-RedBlueDoors-6x6-v0 --env MiniGrid-RedBlueDoors-8x8-v0
OBSTRUCTED="1Dl-v0 1Dlh-v0 1Dlhb-v0 2Dl-v0 2Dlh-v0 2Dlhb-v1 1Q-v1 2Q-v1 Full-v0 Full-v1"
for e in $OBSTRUCTED; do  # one file each: a start past the expert's budget stops only its own env
  $C --episodes 300 --out "$D/obstructed-$e.mdd" --env "MiniGrid-ObstructedMaze-$e"
done
# Held out (zero-shot): Empty-16x16, LavaCrossingS11N5, SimpleCrossingS11N5 (the largest size of a
# trained family), ObstructedMaze-2Dlhb-v0, -1Q-v0, -2Q-v0 (the expert cannot label every seed within
# its budget: 2Q-v0 seed 40 stops its collection; their v1 siblings are trained).
DATA="--data $D/keys.mdd --data $D/nav.mdd --data $D/missions.mdd"
for e in $OBSTRUCTED; do DATA="$DATA --data $D/obstructed-$e.mdd"; done
T="--batch-size 128 --horizon 12 --env-weighting envs --eval-episodes 0 --val-every 500 --seed 0 --device cpu"
# Stage 1 (0.5.0): 5000 steps, then resumed to 8000 (the cosine schedule is stretched to 8000 from step 5000 on)
OMP_NUM_THREADS=1 maze-mdlm train $DATA --out "$D/suite" --steps 5000 --lr 2e-3 $T &
OMP_NUM_THREADS=1 maze-mdlm train $DATA --model ar --out "$D/suite_ar" --steps 4000 --lr 2e-3 $T &
wait
OMP_NUM_THREADS=1 maze-mdlm train $DATA --out "$D/suite" --steps 8000 --lr 2e-3 --resume $T &
OMP_NUM_THREADS=1 maze-mdlm train $DATA --model ar --out "$D/suite_ar" --steps 8000 --lr 2e-3 --resume $T &
wait
# Stage 2 (0.6.0): 15000 more steps from those weights on the same data (--init: new optimizer, warmup
# and cosine schedule, no mask curriculum). Run from the exported 0.5.0 files, which hold the same weights.
OMP_NUM_THREADS=1 maze-mdlm train $DATA --init "$D/suite/checkpoint.pt" --out "$D/suite_ft" --steps 15000 --lr 1e-3 $T &
OMP_NUM_THREADS=1 maze-mdlm train $DATA --model ar --init "$D/suite_ar/checkpoint.pt" --out "$D/suite_ar_ft" \
  --steps 15000 --lr 1e-3 $T &
wait
# Stage 3 (0.7.0): 15000 more steps from the stage-2 weights, the same way, one run after the other (mdlm
# on 1 thread with the other core running benchmarks, 57 min; ar alone on 2 threads, 39 min). Run from
# the exported 0.6.0 files, which hold the same weights.
OMP_NUM_THREADS=1 maze-mdlm train $DATA --init "$D/suite_ft/checkpoint.pt" --out "$D/suite_ft2" --steps 15000 --lr 1e-3 $T
OMP_NUM_THREADS=2 maze-mdlm train $DATA --model ar --init "$D/suite_ar_ft/checkpoint.pt" --out "$D/suite_ar_ft2" \
  --steps 15000 --lr 1e-3 $T
# Stage 4 (0.8.0): 10000 more steps from the stage-3 weights with the weak envs drawn more often
# (mazes x3, ObstructedMaze x2, KeyCorridorS5R3/S6R3 x2, on top of --env-weighting envs), the two runs
# side by side on 1 thread each (40 min each, 4.2 steps/s). Run from the exported 0.7.0 files.
W=(--env-weight 'MazeMDLM/*=3' --env-weight 'MiniGrid-ObstructedMaze-*=2' --env-weight 'MiniGrid-KeyCorridorS[56]R3-v0=2')
OMP_NUM_THREADS=1 maze-mdlm train $DATA --init "$D/suite_ft2/checkpoint.pt" --out "$D/suite_ft3" --steps 10000 --lr 1e-3 "${W[@]}" $T &
OMP_NUM_THREADS=1 maze-mdlm train $DATA --model ar --init "$D/suite_ar_ft2/checkpoint.pt" --out "$D/suite_ar_ft3" \
  --steps 10000 --lr 1e-3 "${W[@]}" $T &
wait
# Stage 5 (0.12.0, mdlm only): more data for the rows furthest from the targets, at seeds past the
# recipe's (mazes from 1000, the long key worlds from 1000, ObstructedMaze from 300), then 12000 more
# steps from the stage-4 weights on all of it, the 20 weak envs drawn more often (LockedRoom and
# MultiRoom-N6 join the stage-4 list). One run alone on 2 torch threads (4.9 steps/s, 40.7 min).
# Run from the exported 0.8.0 file. The AR run on the same data (0.13.0) followed later, on 1 torch
# thread with the other core running MCTD checks (3.3 steps/s, 61.4 min), from the exported 0.8.0 AR file.
X="maze-mdlm collect-data --grid-size 25 --workers 2"
$X --seed 1000 --episodes 3000 --out "$D/more-mazes.mdd" \
  --env MazeMDLM/Maze-19x19-v0 --env MazeMDLM/BraidMaze-19x19-v0 --env MazeMDLM/LavaMaze-19x19-v0 \
  --env MazeMDLM/Maze-25x25-v0 --env MazeMDLM/BraidMaze-25x25-v0 --env MazeMDLM/LavaMaze-25x25-v0
$X --seed 1000 --episodes 2000 --out "$D/more-long.mdd" \
  --env MiniGrid-LockedRoom-v0 --env MiniGrid-KeyCorridorS4R3-v0 --env MiniGrid-KeyCorridorS5R3-v0 \
  --env MiniGrid-KeyCorridorS6R3-v0 --env MiniGrid-MultiRoom-N6-v0
MORE="2Dl-v0 2Dlh-v0 2Dlhb-v1 1Q-v1 2Q-v1 Full-v0 Full-v1"
for e in $MORE; do
  $X --seed 300 --episodes 1200 --out "$D/more-obstructed-$e.mdd" --env "MiniGrid-ObstructedMaze-$e"
done
DATA5="$DATA --data $D/more-mazes.mdd --data $D/more-long.mdd"
for e in $MORE; do DATA5="$DATA5 --data $D/more-obstructed-$e.mdd"; done
W5=("${W[@]}" --env-weight 'MiniGrid-LockedRoom-v0=2' --env-weight 'MiniGrid-MultiRoom-N6-v0=2')
OMP_NUM_THREADS=2 maze-mdlm train $DATA5 --init "$D/suite_ft3/checkpoint.pt" --out "$D/suite_ft4" --steps 12000 --lr 1e-3 \
  "${W5[@]}" $T
OMP_NUM_THREADS=1 maze-mdlm train $DATA5 --model ar --init "$D/suite_ar_ft3/checkpoint.pt" --out "$D/suite_ar_ft4" \
  --steps 12000 --lr 1e-3 "${W5[@]}" $T
# Stage 6: 12000 more steps from the stage-5 weights on the same data and env weights at half the
# peak learning rate, on 1 torch thread with the other core running MCTD checks. The mdlm in 0.14.0
# (3.3 steps/s, 60.4 min), the ar in 0.15.0 (4.1 steps/s, 48.9 min, from the exported 0.13.0 AR file).
OMP_NUM_THREADS=1 maze-mdlm train $DATA5 --init "$D/suite_ft4/checkpoint.pt" --out "$D/suite_ft5" --steps 12000 --lr 5e-4 \
  "${W5[@]}" $T
OMP_NUM_THREADS=1 maze-mdlm train $DATA5 --model ar --init "$D/suite_ar_ft4/checkpoint.pt" --out "$D/suite_ar_ft5" \
  --steps 12000 --lr 5e-4 "${W5[@]}" $T
# Stage 7 (0.16.0, mdlm only): the ObstructedMaze ids that hide keys in boxes re-collected with the
# guessing expert (--box-guess: it plans with MCTD's guess of what the boxes hold, as an agent must,
# and plans again after a wrong box), on the same seeds as their stage-1 and stage-5 files, which
# they replace; then 10000 more steps from the stage-6 weights, same flags, alone on 2 torch threads.
G="$X --box-guess --seed 0"
for e in 1Dlh-v0 1Dlhb-v0; do $G --episodes 300 --out "$D/guess-obstructed-$e.mdd" --env "MiniGrid-ObstructedMaze-$e"; done
HIDDEN="2Dlh-v0 2Dlhb-v1 1Q-v1 2Q-v1 Full-v0 Full-v1"
for e in $HIDDEN; do $G --episodes 1500 --out "$D/guess-obstructed-$e.mdd" --env "MiniGrid-ObstructedMaze-$e"; done
DATA7="--data $D/keys.mdd --data $D/nav.mdd --data $D/missions.mdd --data $D/more-mazes.mdd --data $D/more-long.mdd"
DATA7="$DATA7 --data $D/obstructed-1Dl-v0.mdd --data $D/obstructed-2Dl-v0.mdd --data $D/more-obstructed-2Dl-v0.mdd"
for e in 1Dlh-v0 1Dlhb-v0 $HIDDEN; do DATA7="$DATA7 --data $D/guess-obstructed-$e.mdd"; done
OMP_NUM_THREADS=2 maze-mdlm train $DATA7 --init "$D/suite_ft5/checkpoint.pt" --out "$D/suite_ft6" --steps 10000 --lr 5e-4 \
  "${W5[@]}" $T
# 0.17 (mdlm only): DAgger on the same 8 ids: the states 0.16's greedy MDLM policy reaches from seeds 0-399
# (every 8th with an empty hand, first 128 steps), labelled by the guessing expert; then 10000 more steps
maze-mdlm export --checkpoint "$D/suite_ft6/checkpoint.pt" --out "$D/suite_0.16.pt"
ONPOLICY=""
for e in 1Dlh-v0 1Dlhb-v0 $HIDDEN; do ONPOLICY="$ONPOLICY --env MiniGrid-ObstructedMaze-$e"; done
maze-mdlm collect-data $ONPOLICY --episodes 400 --seed 0 --grid-size 25 --workers 2 --box-guess \
  --on-policy "$D/suite_0.16.pt" --out "$D/on-policy-obstructed.mdd"
OMP_NUM_THREADS=2 maze-mdlm train $DATA7 --data "$D/on-policy-obstructed.mdd" --init "$D/suite_ft6/checkpoint.pt" \
  --out "$D/suite_ft7" --steps 10000 --lr 5e-4 "${W5[@]}" $T
# 0.18 (mdlm only): a second DAgger round with 0.17's policy: the 8 ids again at new seeds (400-799),
# and the 9 other rows where the greedy policy was weakest (seeds 0-399, the true expert: no boxes);
# then 10000 more steps from the stage-8 weights, same flags, alone on 2 torch threads
maze-mdlm export --checkpoint "$D/suite_ft7/checkpoint.pt" --out "$D/suite_0.17.pt"
maze-mdlm collect-data $ONPOLICY --episodes 400 --seed 400 --grid-size 25 --workers 2 --box-guess \
  --on-policy "$D/suite_0.17.pt" --out "$D/on-policy2-obstructed.mdd"
maze-mdlm collect-data --env MazeMDLM/Maze-25x25-v0 --env MazeMDLM/BraidMaze-25x25-v0 --env MazeMDLM/LavaMaze-25x25-v0 \
  --env MiniGrid-KeyCorridorS5R3-v0 --env MiniGrid-KeyCorridorS6R3-v0 --episodes 400 --seed 0 --grid-size 25 --workers 2 \
  --on-policy "$D/suite_0.17.pt" --out "$D/on-policy-weak.mdd"
maze-mdlm collect-data --env MazeMDLM/Maze-19x19-v0 --env MazeMDLM/LavaMaze-19x19-v0 --env MiniGrid-MultiRoom-N6-v0 \
  --env MiniGrid-KeyCorridorS4R3-v0 --episodes 400 --seed 0 --grid-size 25 --workers 2 \
  --on-policy "$D/suite_0.17.pt" --out "$D/on-policy-weak2.mdd"
OMP_NUM_THREADS=2 maze-mdlm train $DATA7 --data "$D/on-policy-obstructed.mdd" --data "$D/on-policy2-obstructed.mdd" \
  --data "$D/on-policy-weak.mdd" --data "$D/on-policy-weak2.mdd" --init "$D/suite_ft7/checkpoint.pt" \
  --out "$D/suite_ft8" --steps 10000 --lr 5e-4 "${W5[@]}" $T
# 0.19 (mdlm only): a third DAgger round with 0.18's policy, now also labelling the states it reaches with an
# object in hand (--on-policy-holding): the 8 ids at seeds 800-1199, and 10 weak rows (the 6 mazes incl. the
# braid mazes, MultiRoom-N6, KeyCorridorS4R3-S6R3) at seeds 400-799; then 10000 more steps from the stage-9
# weights, same flags, alone on 2 torch threads
maze-mdlm export --checkpoint "$D/suite_ft8/checkpoint.pt" --out "$D/suite_0.18.pt"  # 0.18's suite.pt
maze-mdlm collect-data $ONPOLICY --episodes 400 --seed 800 --grid-size 25 --workers 2 --box-guess \
  --on-policy "$D/suite_0.18.pt" --on-policy-holding --out "$D/on-policy3-obstructed-holding.mdd"
WEAK3=""
for e in MazeMDLM/Maze-19x19-v0 MazeMDLM/BraidMaze-19x19-v0 MazeMDLM/LavaMaze-19x19-v0 MazeMDLM/Maze-25x25-v0 \
  MazeMDLM/BraidMaze-25x25-v0 MazeMDLM/LavaMaze-25x25-v0 MiniGrid-MultiRoom-N6-v0 MiniGrid-KeyCorridorS4R3-v0 \
  MiniGrid-KeyCorridorS5R3-v0 MiniGrid-KeyCorridorS6R3-v0; do WEAK3="$WEAK3 --env $e"; done
maze-mdlm collect-data $WEAK3 --episodes 400 --seed 400 --grid-size 25 --workers 2 \
  --on-policy "$D/suite_0.18.pt" --on-policy-holding --out "$D/on-policy3-weak-holding.mdd"
OMP_NUM_THREADS=2 maze-mdlm train $DATA7 --data "$D/on-policy-obstructed.mdd" --data "$D/on-policy2-obstructed.mdd" \
  --data "$D/on-policy-weak.mdd" --data "$D/on-policy-weak2.mdd" --data "$D/on-policy3-obstructed-holding.mdd" \
  --data "$D/on-policy3-weak-holding.mdd" --init "$D/suite_ft8/checkpoint.pt" \
  --out "$D/suite_ft9" --steps 10000 --lr 5e-4 "${W5[@]}" $T
maze-mdlm export --checkpoint "$D/suite_ft9/checkpoint.pt" --out maze_mdlm/checkpoints/suite.pt
maze-mdlm export --checkpoint "$D/suite_ar_ft5/checkpoint.pt" --out maze_mdlm/checkpoints/suite_ar.pt
