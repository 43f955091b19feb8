"""flowlab's learning-rate schedule for the peers' Adam, so a library can be run at its own
benchmark settings (bench_libs.py: Adam 1e-3, constant) and at flowlab's family defaults.

The rate at step t (1-based) is engine::optim::AdamConfig::lr_at's: a linear warm-up from 0
to `lr` over `warmup` steps, then a cosine from `lr` to `final_fraction`·`lr` ending at step
`decay_steps` (0: constant after the warm-up).
"""
import math

import torch


def lr_at(t, lr, warmup, decay_steps, final_fraction=0.1):
    if warmup > 0 and t <= warmup:
        return lr * t / warmup
    if decay_steps == 0:
        return lr
    span = max(decay_steps - warmup, 1)
    progress = min(max(t - warmup, 0) / span, 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * (final_fraction + (1.0 - final_fraction) * cosine)


def add_arguments(ap, default_lr):
    ap.add_argument("--lr", type=float, default=default_lr)
    ap.add_argument("--warmup", type=int, default=0, help="steps of linear warm-up")
    ap.add_argument("--decay-steps", type=int, default=0,
                    help="cosine decay to a tenth ending at this step; 0 keeps the rate constant")


def adam(params, args):
    """Adam at `args.lr` and a scheduler to step after every optimiser step."""
    opt = torch.optim.Adam(params, lr=args.lr)
    # LambdaLR calls the factor with the number of steps taken so far (0 before the first).
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: lr_at(k + 1, 1.0, args.warmup, args.decay_steps))
    return opt, sched


def describe(args):
    if args.warmup == 0 and args.decay_steps == 0:
        return f"Adam {args.lr:g}, constant"
    return f"Adam {args.lr:g}, warm-up {args.warmup}, cosine to a tenth by step {args.decay_steps}"
