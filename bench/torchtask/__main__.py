"""``python -m bench.torchtask ceiling [--seeds 3] [--epochs 20]``: the centralised CNN ceiling;
``python -m bench.torchtask privacy [--epsilons 1,3,8,inf,none] [--fits 20] [--local-epochs 1]
[--batch-size 128] [--clip 1] [--dp-learning-rate 0.5] [--samples 20000] [--channels 32]
[--seeds 3]``: the
privacy-utility table, one JSON line per (epsilon, seed) and a summary line per epsilon;
``python -m bench.torchtask memory [--hidden 0,4000,12000,40000]``: a torch worker's RSS beyond
torch's (with ``--hidden``, MNIST-1D CNNs with a hidden layer: 0.1 to 104 MB models).
``--task mnist``: the 2-D CNN on MNIST (ceiling and memory) instead of the 1-D CNN on MNIST-1D.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from bench.torchtask.ceiling import BUILDERS, centralised
from torchtrain.mnist1d import DEFAULT_SAMPLES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.torchtask", description=__doc__)
    parser.add_argument("what", choices=["ceiling", "privacy", "memory"])
    parser.add_argument("--task", choices=sorted(BUILDERS), default="mnist1d")
    parser.add_argument("--epsilons", default="1,3,8,inf,none")
    parser.add_argument("--fits", type=int, default=20)
    parser.add_argument("--dp-learning-rate", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--buffer-size", type=int, default=4)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--hidden", default="", help="memory: hidden-layer widths, e.g. 0,4000")
    args = parser.parse_args(argv)
    if args.what == "privacy":
        return privacy_table(args)
    if args.what == "memory":
        from bench.torchtask.memory import worker_memory

        hidden = tuple(int(h) for h in args.hidden.split(",") if h)
        print(json.dumps(worker_memory(args.task, hidden), indent=1))
        return 0
    finals = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        run = centralised(seed, args.epochs, args.samples, args.learning_rate, args.task)
        finals.append(run.accuracies[-1])
        print(json.dumps(run.__dict__), flush=True)
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"ceiling: {statistics.mean(finals):.4f} ± {spread:.4f} over {len(finals)} seeds, "
          f"{args.epochs} epochs, task {args.task}")  # fmt: skip
    return 0


def privacy_table(args: argparse.Namespace) -> int:
    from bench.torchtask.privacy import DpRun, federate

    for text in args.epsilons.split(","):
        eps = None if text == "none" else float(text)
        accuracies = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run = DpRun(
                eps, fits=args.fits, epochs=args.local_epochs, batch_size=args.batch_size,
                clip=args.clip, learning_rate=args.dp_learning_rate,
                buffer_size=args.buffer_size, samples=args.samples, channels=args.channels,
                seed=seed,
            )  # fmt: skip
            started = time.monotonic()
            result = federate(run)
            accuracies.append(result.accuracy)
            row = {**result.__dict__, "run": run.__dict__, "seconds": time.monotonic() - started}
            print(json.dumps(row), flush=True)
        per_seed = ", ".join(f"{a:.3f}" for a in accuracies)
        print(f"epsilon {text}: mean {statistics.mean(accuracies):.3f} ({per_seed})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
