"""The ingest baseline: raw pika consuming one message and publishing one of the same size.

Same queue type and arguments as the aggregator's results queue, same
prefetch, publisher confirms on, the model's (transient) delivery mode,
routed to one latest-value queue like a worker's. Prints JSON timings.
Run as ``python -m bench.relay --queue Q --exchange X --count N --prefetch P``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pika


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefetch", type=int, required=True)
    args = parser.parse_args()
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=args.prefetch)
    props = pika.BasicProperties(
        content_type="application/msgpack", delivery_mode=pika.DeliveryMode.Transient
    )
    done = 0
    started = time.monotonic()
    for method, _props, body in channel.consume(args.queue, auto_ack=False):
        channel.basic_publish(args.exchange, "broadcast", body, props)
        channel.basic_ack(method.delivery_tag)
        done += 1
        if done >= args.count:
            break
    seconds = time.monotonic() - started
    channel.cancel()
    connection.close()
    print(json.dumps({"count": done, "seconds": seconds}))


if __name__ == "__main__":
    main()
