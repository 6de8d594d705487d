"""Codec throughput: encode, decode and validate an update, against memcpy and pickle 5.

fedmq's figure is the whole path an update takes: the worker's ``encode``, and
the aggregator's ``decode`` plus ``validate_update`` against the model (names,
shapes, dtypes, and the finiteness scan that reads every element). The
baselines, timed in the same run:

* memcpy: one numpy copy of the array (the least any copying transfer costs);
* pickle 5 out of band: ``pickle.dumps(protocol=5, buffer_callback=...)`` and
  ``pickle.loads(buffers=...)``, zero-copy like fedmq, plus the same
  finiteness scan (a pickle receiver must check the values too, and pickle is
  never safe on hostile input, which is why fedmq does not use it).
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterable

import numpy as np

from aggregator.core.validation import Accepted, check_values, validate_update
from bench import Context, Row
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


def _round_trip(update: ClientUpdate, model: dict[str, np.ndarray]) -> None:
    decoded = decode(encode(update), ClientUpdate)
    verdict = validate_update(
        decoded, model=model, version=0, expected_kind="delta", max_staleness=None
    )
    if not isinstance(verdict, Accepted):
        raise RuntimeError(f"the benchmark's update was refused: {verdict}")


def _pickle_round_trip(fields: dict[str, object]) -> None:
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(fields, protocol=5, buffer_callback=buffers.append)
    loaded = pickle.loads(data, buffers=buffers)
    if check_values(loaded["arrays"]) is not None:  # the aggregator's own value checks
        raise RuntimeError("non-finite")


def run(ctx: Context) -> Iterable[Row]:
    repeat = 3 if ctx.quick else 7
    for label, floats in (QUICK_SIZES if ctx.quick else SIZES).items():
        update = _update(floats)
        arr = update.arrays["w"]
        fields = {**update.model_dump(exclude={"arrays"}), "arrays": {"w": np.array(arr)}}
        model = {"w": np.zeros_like(arr)}
        ours = best_seconds(functools.partial(_round_trip, update, model), repeat)
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
            "",
            None,
            "fedmq: encode + decode + validate (finiteness scan)",
        )
        yield Row(
            "codec encode+decode",
            f"{label} vs pickle 5 out-of-band",
            f"{gbps(nbytes, ours):.2f} GB/s",
            f"{gbps(nbytes, pickled):.2f} GB/s",
            pickled / ours,
            "",
            None,
            "pickle: zero-copy dumps + loads + the same scan",
        )
