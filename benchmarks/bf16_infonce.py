"""Time of one InfoNCE forward + backward with float32 and with bfloat16 similarity products.

    python benchmarks/bf16_infonce.py [--rows 2048] [--dim 64] [--repeats 30]

The contrastive terms dominate a SIGE step (several InfoNCEs over the batch's rows), so this is
where ``mixed_precision=bf16`` could pay. Prints the median milliseconds of each, alternating
the two, and the relative difference of the loss. It writes nothing: docs/scaling.md quotes
its output with the machine and date.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sigerec.models.losses import contrastive_precision, info_nce


def timed(anchors, views, dtype) -> tuple[float, float]:
    with contrastive_precision(dtype):
        started = time.perf_counter()
        loss = info_nce(anchors, views, 0.2, "bounded")
        loss.backward()
    return time.perf_counter() - started, float(loss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    anchors = torch.randn(args.rows, args.dim, requires_grad=True)
    views = torch.randn(args.rows, args.dim, requires_grad=True)
    times = {"float32": [], "bfloat16": []}
    losses = {}
    for _ in range(args.repeats + 3):
        for name, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
            seconds, losses[name] = timed(anchors, views, dtype)
            times[name].append(seconds)
    for name, values in times.items():
        print(f"{name}: {1000 * statistics.median(values[3:]):.1f} ms per InfoNCE forward + backward")
    print(f"loss difference: {abs(losses['bfloat16'] - losses['float32']) / losses['float32']:.2e} (relative)")
    print(f"torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
