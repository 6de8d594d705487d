"""Codec throughput: encode + decode of an update against one numpy copy (memcpy) and pickle
protocol 5.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterable

import numpy as np

from bench import Context, Row, at_least
from bench.timing import best_seconds, gbps
from schemas.codec import decode, encode
from schemas.messages import ClientUpdate

SIZES = {"1M float32": 1_000_000, "25M float32": 25_000_000}
QUICK_SIZES = {"100k float32": 100_000, "1M float32": 1_000_000}


def _update(floats: int) -> ClientUpdate:
    arr = np.random.default_rng(0).standard_normal(floats, dtype=np.float32)
    return ClientUpdate(
        update_id="bench-update-0001",
        worker_id="bench",
        base_version=0,
        num_examples=1,
        update_kind="delta",
        train_seconds=0.0,
        arrays={"w": arr},
    )


def _round_trip(update: ClientUpdate) -> None:
    decoded = decode(encode(update), ClientUpdate)
    decoded.arrays["w"][-1]  # touch the result like a consumer would


def _pickle_round_trip(fields: dict[str, object]) -> None:
    loaded = pickle.loads(pickle.dumps(fields, protocol=5))
    loaded["arrays"]["w"][-1]


def run(ctx: Context) -> Iterable[Row]:
    repeat = 3 if ctx.quick else 7
    for label, floats in (QUICK_SIZES if ctx.quick else SIZES).items():
        update = _update(floats)
        arr = update.arrays["w"]
        fields = {**update.model_dump(exclude={"arrays"}), "arrays": {"w": np.array(arr)}}
        ours = best_seconds(functools.partial(_round_trip, update), repeat)
        memcpy = best_seconds(arr.copy, repeat)
        pickled = best_seconds(functools.partial(_pickle_round_trip, fields), repeat)
        nbytes = arr.nbytes
        ctx.log(
            f"codec {label}: fedmq {gbps(nbytes, ours):.2f} GB/s, "
            f"memcpy {gbps(nbytes, memcpy):.2f}, pickle5 {gbps(nbytes, pickled):.2f}"
        )
        yield Row(
            "codec encode+decode",
            f"{label} vs memcpy",
            f"{gbps(nbytes, ours):.2f} GB/s",
            f"{gbps(nbytes, memcpy):.2f} GB/s",
            memcpy / ours,
            ">= 0.5x",
            at_least(memcpy / ours, 0.5),
        )
        yield Row(
            "codec encode+decode",
            f"{label} vs pickle 5",
            f"{gbps(nbytes, ours):.2f} GB/s",
            f"{gbps(nbytes, pickled):.2f} GB/s",
            pickled / ours,
            ">= 1x",
            at_least(pickled / ours, 1.0),
        )
