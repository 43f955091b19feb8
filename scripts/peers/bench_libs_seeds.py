#!/usr/bin/env python3
"""`../shared/peers/bench_libs.py` over several seeds, and the peers' test set as a CSV.

bench_libs.py trains each library flow with seed 0 only; this runs its protocol (data stream,
test set, NLL) with seeds 1..N, at its Adam 1e-3 or, with --lr/--warmup/--decay-steps, at a
flowlab family's schedule (schedule.py). --dump-test writes the fixed 10,000-point test set
(bench_torch.py's `sample_data(dataset, N_TEST, RandomState(TEST_SEED))`) so that flowlab
scores the same points:
  python scripts/peers/bench_libs_seeds.py --models zuko_realnvp,zuko_realnvp_tanh \
      --dataset 8gaussians --steps 1000 --seeds 1,2,3 --dump-test /tmp/8g.csv
  flowlab train --target 8gaussians --steps 1000 --seed 1 --test /tmp/8g.csv --out out/
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("FLOWLAB_PEERS", os.path.join(HERE, "..", "..", "..", "shared", "peers")))
import bench_libs as bl  # noqa: E402
import bench_torch as bt  # noqa: E402
import schedule  # noqa: E402


def run(name, dataset, steps, seed, args):
    """bench_libs.run's protocol (its data stream, test set and NLL) with `schedule`'s Adam."""
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    model, lossf = bl.build(name)
    opt, sched = schedule.adam(model.parameters(), args)
    test = bt.sample_data(dataset, bt.N_TEST, np.random.RandomState(bt.TEST_SEED))
    for _ in range(steps):
        x = bt.sample_data(dataset, bt.BATCH, rng)
        opt.zero_grad(set_to_none=True)
        loss = lossf(x)
        loss.backward()
        opt.step()
        sched.step()
    res = {"steps_run": steps, "final_train_loss": float(loss.detach()), "adam": schedule.describe(args)}
    res["n_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        res[f"nll@{steps}"] = float(lossf(test))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="zuko_realnvp,zuko_realnvp_tanh")
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--dump-test", default=None)
    schedule.add_arguments(ap, bt.LR)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.dump_test:
        test = bt.sample_data(args.dataset, bt.N_TEST, np.random.RandomState(bt.TEST_SEED))
        np.savetxt(args.dump_test, np.asarray(test), delimiter=",", fmt="%.7g")
    for m in args.models.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            res = run(m, args.dataset, args.steps, seed, args)
            print(json.dumps({"model": m, "dataset": args.dataset, "seed": seed, **res}), flush=True)


if __name__ == "__main__":
    main()
