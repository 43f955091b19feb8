#!/usr/bin/env python3
"""Library flows trained on flowlab's own samples of a target, scored by KL(p*||q).

bench_torch.py's data sets are sklearn's and numpy's; an image, a painted grid or any other
flowlab target has no Python sampler. flowlab writes one instead, with the normalised
log-density of each point:
  flowlab render --target paint_flow --samples 1000000 --seed 11 --out /tmp/t.png --csv /tmp/train.csv
  flowlab render --target paint_flow --samples 10000 --seed 12 --out /tmp/t.png --csv /tmp/test.csv
  python scripts/peers/bench_stream.py --train /tmp/train.csv --test /tmp/test.csv \
      --models zuko_realnvp,zuko_nsf --steps 2000 --seeds 1,2,3
Each step draws a batch of 512 from the training pool (bench_libs.py's protocol: Adam 1e-3, the
library's standard class via bench_libs.build; --lr/--warmup/--decay-steps for a flowlab
family's schedule, see schedule.py); the test points give the held-out NLL and
KL = mean(log p*) + NLL, the estimate flowlab's `test_nll`/`kl` use.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("FLOWLAB_PEERS", os.path.join(HERE, "..", "..", "..", "shared", "peers")))
import bench_libs as bl  # noqa: E402
import bench_torch as bt  # noqa: E402
import schedule  # noqa: E402


def load(path):
    table = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64)
    return torch.from_numpy(table[:, :2].astype(np.float32)), table[:, 2]


def run(name, pool, test, log_p, steps, seed, args):
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    model, lossf = bl.build(name)
    opt, sched = schedule.adam(model.parameters(), args)
    started = time.perf_counter()
    for _ in range(steps):
        x = pool[rng.randint(len(pool), size=bt.BATCH)]
        opt.zero_grad(set_to_none=True)
        loss = lossf(x)
        loss.backward()
        opt.step()
        sched.step()
    secs = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        nll = float(lossf(test))
    kl = float(np.mean(log_p) + nll) if np.isfinite(log_p).all() else None
    return {"nll": nll, "kl": kl, "train_secs": secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--models", default="zuko_realnvp,zuko_nsf")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", default="1,2,3")
    schedule.add_arguments(ap, bt.LR)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pool, _ = load(args.train)
    test, log_p = load(args.test)
    for m in args.models.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            res = run(m, pool, test, log_p, args.steps, seed, args)
            print(json.dumps({"model": m, "seed": seed, "steps": args.steps,
                              "adam": schedule.describe(args), **res}), flush=True)


if __name__ == "__main__":
    main()
