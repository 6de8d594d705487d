"""Many workers in one process, one thread (and one connection) each: ``python -m bench.swarm``.

A hundred worker processes would need a hundred interpreters on a 2-core
machine; threads keep the benchmark about the aggregator. Each worker is a
full ``WorkerService`` with its own AMQP connection and model queue.
"""

from __future__ import annotations

import argparse
import threading

from training.loading import load_trainer
from worker.service import WorkerService
from worker.settings import WorkerSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--amqp-url", "--namespace", "--events-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--num-partitions", type=int, required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument(
        "--seconds", type=float, required=True, help="Stop at the latest after this long."
    )
    args = parser.parse_args()
    stop = threading.Event()
    threads = []
    for index in range(args.first, args.first + args.count):
        settings = WorkerSettings(
            amqp_url=args.amqp_url,
            namespace=args.namespace,
            worker_id=f"w{index}",
            partition_index=index,
            num_partitions=args.num_partitions,
            partition="iid",
            delay=args.delay,
            events_file=f"{args.events_dir}/w{index}.events.jsonl",
            log_level="warning",
        )
        trainer = load_trainer(settings, role="worker", partition=index)
        thread = threading.Thread(
            target=WorkerService(settings, trainer, stop=stop).run, name=f"w{index}"
        )
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=args.seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
