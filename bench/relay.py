"""The ingest baselines: raw pika draining a results queue and publishing model-sized messages.

Same queue type and arguments as the aggregator's results queue, same
prefetch, publisher confirms on, the model's (transient) delivery mode,
routed to one latest-value queue like a worker's. Prints JSON timings.
Run as ``python -m bench.relay --queue Q --exchange X --count N --prefetch P [--fair]``.

* naive (the earlier baseline): for every message, publish one (confirmed) and ack it alone.
* ``--fair``: the best a hand-written pika loop can do for the aggregator's job, with the
  aggregator's own policies: the same receive-path tuning of pika
  (``broker.tuning``), deliveries collected while ``process_data_events`` runs, then per batch
  of at most ``prefetch`` deliveries one confirmed publish of a model-sized body (the aggregator
  publishes one version per batch) and one ``multiple`` ack.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import pika

from broker.tuning import tune_pika_receive


def naive(channel: Any, args: argparse.Namespace, props: pika.BasicProperties) -> int:
    done = 0
    for method, _props, body in channel.consume(args.queue, auto_ack=False):
        channel.basic_publish(args.exchange, "broadcast", bytes(body), props)
        channel.basic_ack(method.delivery_tag)
        done += 1
        if done >= args.count:
            break
    channel.cancel()
    return done


def fair(
    connection: Any, channel: Any, args: argparse.Namespace, props: pika.BasicProperties
) -> int:
    inbox: list[tuple[int, bytes | memoryview]] = []
    channel.basic_consume(
        args.queue, lambda _ch, m, _p, body: inbox.append((m.delivery_tag, body)), auto_ack=False
    )
    done = 0
    while done < args.count:
        connection.process_data_events(time_limit=0.05)
        while inbox and done < args.count:
            batch, inbox[:] = inbox[: args.prefetch], inbox[args.prefetch :]
            channel.basic_publish(args.exchange, "broadcast", bytes(batch[-1][1]), props)
            channel.basic_ack(batch[-1][0], multiple=True)
            done += len(batch)
    return done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefetch", type=int, required=True)
    parser.add_argument("--fair", action="store_true")
    args = parser.parse_args()
    if args.fair:
        tune_pika_receive()
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=args.prefetch)
    props = pika.BasicProperties(
        content_type="application/msgpack", delivery_mode=pika.DeliveryMode.Transient
    )
    started = time.monotonic()
    done = fair(connection, channel, args, props) if args.fair else naive(channel, args, props)
    seconds = time.monotonic() - started
    connection.close()
    print(json.dumps({"count": done, "seconds": seconds}))


if __name__ == "__main__":
    main()
