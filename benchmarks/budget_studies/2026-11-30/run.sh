#!/bin/bash
# The study's commands as they ran (in a copy of the default run's folder, /tmp/bx, with presets/budget_ext.yaml).
cd /tmp/bx; export PATH=/tmp/bx/.venv/bin:$PATH
date +%s > t0
/usr/bin/time -f "train_igae %e s" igae train-igae --preset budget_ext --seed 0 --ae results/autoencoders/standard_s0 --scenes data/scenes/train --photos data/photos --out results/autoencoders/igae_s0 --work results/checkpoints/igae_s0 > train_igae.log 2>&1 || exit 1
date +%s > t1
for m in ngp kplanes; do
  /usr/bin/time -f "fit $m %e s" igae fit-nerf --preset budget_ext --scene-set data/scenes/heldout --autoencoder results/autoencoders/igae_s0 --space-name igae --ae-seed 0 --method $m --out results/nerf/igae_s0/$m --work results/checkpoints/nerf/igae_s0/$m --quiet > fit_$m.log 2>&1 &
done; wait
date +%s > t2
/usr/bin/time -f "budget %e s" igae budget-study --preset budget_ext --scene-set data/scenes/heldout --autoencoders results/autoencoders --fits results/nerf --out results/budget --work results/checkpoints/budget > budget.log 2>&1
echo "rc=$?" >> budget.log; date +%s > t3
# after run.sh: the fine-tuning ablation at the final budget (1600 joint steps), fitted with the same methods
cd /tmp/bx; export PATH=/tmp/bx/.venv/bin:$PATH
while [ ! -f t3 ]; do sleep 10; done
date +%s > t4
/usr/bin/time -f "finetune %e s" igae finetune-ae --preset budget_ext --seed 0 --ae results/autoencoders/standard_s0 --scenes data/scenes/train --photos data/photos --out results/autoencoders/finetuned_s0 --work results/checkpoints/finetuned_s0 > finetune.log 2>&1 || exit 1
for m in ngp kplanes; do
  /usr/bin/time -f "fit ft $m %e s" igae fit-nerf --preset budget_ext --scene-set data/scenes/heldout --autoencoder results/autoencoders/finetuned_s0 --space-name finetuned --ae-seed 0 --method $m --out results/nerf/finetuned_s0/$m --work results/checkpoints/nerf/finetuned_s0/$m --quiet > fitft_$m.log 2>&1 &
done; wait
date +%s > t5
# A second AE seed for the final budget (1600 joint steps): standard AE seed 1, IG-AE seed 1, their ngp and kplanes fits
cd /tmp/bx; export PATH=/tmp/bx/.venv/bin:$PATH
date +%s > s0
/usr/bin/time -f "train_ae s1 %e s" igae train-ae --preset budget_ext --seed 1 --scenes data/scenes/train --photos data/photos --out results/autoencoders/standard_s1 --work results/checkpoints/standard_s1 > train_ae_s1.log 2>&1 || exit 1
/usr/bin/time -f "train_igae s1 %e s" igae train-igae --preset budget_ext --seed 1 --ae results/autoencoders/standard_s1 --scenes data/scenes/train --photos data/photos --out results/autoencoders/igae_s1 --work results/checkpoints/igae_s1 > train_igae_s1.log 2>&1 || exit 1
date +%s > s1
for space in standard igae; do for m in ngp kplanes; do
  /usr/bin/time -f "fit $space s1 $m %e s" igae fit-nerf --preset budget_ext --scene-set data/scenes/heldout --autoencoder results/autoencoders/${space}_s1 --space-name $space --ae-seed 1 --method $m --out results/nerf/${space}_s1/$m --work results/checkpoints/nerf/${space}_s1/$m --quiet > fit_${space}_s1_$m.log 2>&1 &
done; wait; done
date +%s > s2
# Every method at the final budget (1600 joint steps): vanilla and triplane fits of seed 0's and seed 1's AEs,
# and the fine-tuning ablation of seed 1 with its fits of all four methods.
cd /tmp/bx; export PATH=/tmp/bx/.venv/bin:$PATH
date +%s > u0
fit() {  # space seed method
  /usr/bin/time -f "fit $1 s$2 $3 %e s" igae fit-nerf --preset budget_ext --scene-set data/scenes/heldout --autoencoder results/autoencoders/$1_s$2 --space-name $1 --ae-seed $2 --method $3 --out results/nerf/$1_s$2/$3 --work results/checkpoints/nerf/$1_s$2/$3 --quiet > fit4_$1_s$2_$3.log 2>&1
}
(
  /usr/bin/time -f "finetune s1 %e s" igae finetune-ae --preset budget_ext --seed 1 --ae results/autoencoders/standard_s1 --scenes data/scenes/train --photos data/photos --out results/autoencoders/finetuned_s1 --work results/checkpoints/finetuned_s1 > finetune_s1.log 2>&1 || exit 1
  date +%s > u1
  for m in ngp kplanes; do fit finetuned 1 $m; done
) &
for space_seed in "standard 1" "igae 0" "igae 1" "finetuned 0"; do
  for m in vanilla triplane; do fit $space_seed $m; done
done
date +%s > u2
while [ ! -f u1 ]; do sleep 10; done
for m in vanilla triplane; do fit finetuned 1 $m; done
wait
date +%s > u3
