#!/usr/bin/env python3
"""Reverse KL on U1-U4 with the peers' own plain-PyTorch models.

`../shared/peers/bench_torch.py` trains `planar_rkl` (32 planar layers) and `realnvp_rkl` (the
reference RealNVP) by reverse KL on U1 only. This script imports those models and that training
loop unchanged (batch 512, Adam 1e-3, 10,000 evaluation samples under a fixed seed) and adds:
  * U2-U4 (Rezende & Mohamed 2015, Table 1) with the soft wall flowlab puts on them
    (`0.5*((|z1| - 4)_+ / 0.2)^2`, src/targets/energy.rs): without it they have no normaliser;
  * log Z by the same midpoint rule as flowlab (700 x 700 cells on [-7, 7]^2);
  * --planar-layers (flowlab's planar default is 16, the peer's 32), --seeds.

  python scripts/peers/bench_rkl.py --threads 1 --models realnvp_rkl,planar_rkl \
      --targets u1,u2,u3,u4 --steps 1000 --seeds 1,2,3
Prints one JSON line per run: KL(q||p) = E_q[log q + U] + log Z on 10,000 samples.
"""
import argparse
import json
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("FLOWLAB_PEERS", os.path.join(HERE, "..", "..", "..", "shared", "peers"))
sys.path.insert(0, PEERS)
import bench_torch as bt  # noqa: E402  (the peers' models, unchanged)


def _gauss_log(d, s):
    return -0.5 * (d / s) ** 2


def _wall(z1):
    return 0.5 * ((z1.abs() - 4.0).clamp(min=0.0) / 0.2) ** 2


def energy(name, z):
    z1, z2 = z[:, 0], z[:, 1]
    w1 = torch.sin(2 * math.pi * z1 / 4)
    two = lambda a, b: -torch.logsumexp(torch.stack([a, b], 1), 1)  # noqa: E731
    if name == "u1":
        return bt.U1(z)
    if name == "u2":
        return -_gauss_log(z2 - w1, 0.4) + _wall(z1)
    if name == "u3":
        w2 = 3 * torch.exp(_gauss_log(z1 - 1, 0.6))
        return two(_gauss_log(z2 - w1, 0.35), _gauss_log(z2 - w1 + w2, 0.35)) + _wall(z1)
    if name == "u4":
        w3 = 3 * torch.sigmoid((z1 - 1) / 0.3)
        return two(_gauss_log(z2 - w1, 0.4), _gauss_log(z2 - w1 + w3, 0.35)) + _wall(z1)
    raise ValueError(name)


def log_z(name, half=7.0, cells=700):
    h = 2 * half / cells
    g = torch.linspace(-half + h / 2, half - h / 2, cells, dtype=torch.float64)
    x, y = torch.meshgrid(g, g, indexing="ij")
    u = energy(name, torch.stack([x.reshape(-1), y.reshape(-1)], 1))
    return (torch.logsumexp(-u, 0) + 2 * math.log(h)).item()


def run(model_name, target, steps, seed, planar_layers):
    torch.manual_seed(seed)
    if model_name == "planar_rkl":
        model = bt.PlanarFlow(n_layers=planar_layers)
    else:
        model = bt.RealNVP()
    opt = torch.optim.Adam(model.parameters(), lr=bt.LR)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        x, logq = model.sample_logq(bt.BATCH)
        loss = (logq + energy(target, x)).mean()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        torch.manual_seed(bt.TEST_SEED)
        x, logq = model.sample_logq(bt.N_TEST)
        rkl_loss = float((logq + energy(target, x)).mean())
    return rkl_loss, sum(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="realnvp_rkl,planar_rkl")
    ap.add_argument("--targets", default="u1,u2,u3,u4")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--planar-layers", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for target in args.targets.split(","):
        lz = log_z(target)
        for m in args.models.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                loss, secs = run(m, target, args.steps, seed, args.planar_layers)
                print(json.dumps({"model": m, "target": target, "seed": seed, "steps": args.steps,
                                  "planar_layers": args.planar_layers if m == "planar_rkl" else None,
                                  "kl": loss + lz, "log_z": lz, "train_s": secs}), flush=True)


if __name__ == "__main__":
    main()
