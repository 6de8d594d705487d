"""``python -m bench.secure_accuracy``: does secure aggregation cost accuracy? (issue floor: 0.5 pt)

The same training, two ways, on the built-in digits task (logistic
regression) or, with ``--task mnist1d``, the PyTorch task (the 1-D CNN on
MNIST-1D, SGD with momentum at learning rate 0.05, batch 32), Dirichlet(0.5)
over the workers: every round all workers train the current model; the
round's deltas are combined

* in the clear, by FedBuff with unit weights (its step with K = the workers,
  no staleness), and
* by ``SecureFedBuff`` through the whole SecAgg+ protocol in memory (every
  message encoded and decoded by the wire codec; real keys, shares, masks):
  clipped to ``--clip``, quantized to fixed point, masked, summed, unmasked.

Same seeds, same data, same local training: the difference in test accuracy
is what clipping and rounding cost. ``--epsilons 4,8`` adds distributed DP to
the secure path: every worker adds its share of Skellam noise, with z
calibrated (dp-accounting, RDP, delta 1e-5) so that ``--rounds`` buffers, each
charged to every worker, spend exactly that epsilon. The broker plays no part here (the
services' protocol is tested in tests/e2e/test_secure_aggregation.py).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aggregator.core.distributed_dp import DistributedConfig, DistributedPrivacy
from aggregator.core.fedbuff import FedBuff
from aggregator.core.private import PrivacyConfig, PrivateStrategy
from aggregator.core.secure_fedbuff import SecureFedBuff
from aggregator.core.staleness import staleness_function
from aggregator.core.strategy import Contribution
from privacy.accountant import GaussianEvent, Ledger, calibrate_noise_multiplier
from privacy.participation import Budget
from schemas.codec import decode, encode
from schemas.messages import TrainConfig
from schemas.secure import RoundStage, SecureRound, SecureUpload
from secagg.client import SecAggClient
from secagg.ledger import BufferSum
from secagg.local import seeded_entropy
from secagg.messages import (
    AggregatorMessage,
    NeighbourKeys,
    ShareInbox,
    UnmaskRequest,
    WorkerMessage,
)
from secagg.wire import addressed_to, message_of, round_message, upload_of
from training.loading import load_factory
from training.settings import TaskSettings
from training.trainer import Trainer, TrainerContext
from training.weights import Weights, flatten

STAGES: tuple[RoundStage, ...] = ("keys", "shares", "masked", "unmask")
DELTA = 1e-5


#: Each task's local training: (learning rate, batch size).
SCHEDULES = {"digits": (0.3, 32), "mnist1d": (0.05, 32)}
#: MNIST-1D sequences generated for the PyTorch task (docs/torch.md's runs use the same).
MNIST1D_SAMPLES = 20_000


def trainers(task: str, workers: int, seed: int) -> tuple[Trainer, list[Trainer]]:
    if task == "mnist1d":
        return _torch_trainers(workers, seed)
    factory, options = load_factory("builtin"), TaskSettings().trainer_options()

    def make(role: str, partition: int) -> Trainer:
        ctx = TrainerContext(role, partition, workers, seed, options, model_seed=seed)  # type: ignore[arg-type]
        return factory(ctx)

    return make("aggregator", 0), [make("worker", i) for i in range(workers)]


def _torch_trainers(workers: int, seed: int) -> tuple[Trainer, list[Trainer]]:
    import torch

    from torchtrain.mnist1d import build_trainer

    torch.set_num_threads(1)  # the same arithmetic in both paths, and one core of the machine
    options = {"samples": MNIST1D_SAMPLES, "partition": "dirichlet"}

    def make(role: str, partition: int) -> Trainer:
        ctx = TrainerContext(role, partition, workers, seed, options, model_seed=seed)  # type: ignore[arg-type]
        return build_trainer(ctx)

    return make("aggregator", 0), [make("worker", i) for i in range(workers)]


def largest_norm(updates: list[Weights]) -> float:
    """The largest L2 norm of a round's deltas (is the clip binding?)."""
    return max(float(np.sqrt(sum(np.sum(np.square(v)) for v in d.values()))) for d in updates)


def deltas(model: Weights, local: list[Trainer], config: TrainConfig) -> list[Weights]:
    out = []
    for trainer in local:
        fit = trainer.fit({k: v.copy() for k, v in model.items()}, config)
        out.append({k: np.asarray(fit.weights[k], dtype=v.dtype) - v for k, v in model.items()})
    return out


def plain_round(
    strategy: FedBuff | PrivateStrategy, model: Weights, updates: list[Weights]
) -> None:
    for i, delta in enumerate(updates):
        strategy.add(model, Contribution(f"u{i}", f"w{i}", 0, 1, delta))


def _wire(message: SecureRound | SecureUpload) -> SecureRound | SecureUpload:
    return decode(encode(message), type(message))


def secure_round(
    strategy: SecureFedBuff,
    model: Weights,
    updates: list[Weights],
    version: int,
    stream: int | None = None,
) -> None:
    ids = frozenset(f"w{i:02d}" for i in range(len(updates)))
    setup = strategy.open_buffer(run_id="bench", version=version, candidates=ids, model=model)
    assert setup is not None
    # Keys, masks, rounding and noise are seeded by round, and by ``stream`` too: with distributed
    # DP every seed then draws its own noise (without it, the published figures' streams stay).
    seed = version if stream is None else stream * 1_000_000 + version
    clients = {u: SecAggClient(setup, u, entropy=seeded_entropy(seed, u)) for u in setup.cohort}
    vectors = {f"w{i:02d}": flatten(d, model) for i, d in enumerate(updates)}
    messages: tuple[AggregatorMessage, ...] = ()
    for stage in STAGES:
        broadcast = _wire(
            round_message(setup, run_id="bench", version=version, stage=stage, messages=messages)
        )
        assert isinstance(broadcast, SecureRound)
        for u, client in clients.items():
            request = addressed_to(broadcast, u)
            answer: WorkerMessage
            if stage == "keys":
                answer = client.advertise_keys()
            elif isinstance(request, NeighbourKeys):
                answer = client.share_keys(request)
            elif isinstance(request, ShareInbox):
                answer = client.masked_input(request, vectors[u], 1.0)
            else:
                assert isinstance(request, UnmaskRequest)
                answer = client.unmask(request)
            upload = _wire(upload_of(answer))
            assert isinstance(upload, SecureUpload)
            strategy.receive(u, message_of(upload))
        result = strategy.advance(model)
        if isinstance(result, BufferSum):
            return
        assert isinstance(result, tuple), result
        messages = result
    raise AssertionError("the buffer did not conclude")


def accuracy(evaluator: Trainer, model: Weights) -> float:
    return float(evaluator.evaluate(model, TrainConfig()).metrics["accuracy"])


def secure_strategy(workers: int, clip: float, noise_multiplier: float | None) -> SecureFedBuff:
    """Secure FedBuff over every worker, with distributed DP when ``noise_multiplier`` is set."""
    privacy = None
    if noise_multiplier is not None:
        config = DistributedConfig(
            noise_multiplier=noise_multiplier,
            clip=clip,
            min_contributors=workers,
            budget=Budget(None, DELTA),
        )
        privacy = DistributedPrivacy(config)
    return SecureFedBuff(buffer_size=workers, cohort_size=workers, clip=clip, privacy=privacy)


def train_config(task: str) -> TrainConfig:
    rate, batch = SCHEDULES[task]
    return TrainConfig(update_kind="delta", learning_rate=rate, batch_size=batch)


def unit_fedbuff(workers: int) -> FedBuff:
    """Plain FedBuff over one round of every worker: unit weights, no staleness."""
    return FedBuff(
        buffer_size=workers,
        staleness=staleness_function("constant", a=None, b=0),
        sample_weighting=False,
    )


def central_accuracy(
    task: str, seed: int, workers: int, rounds: int, clip: float, noise_multiplier: float
) -> float:
    """Test accuracy of central DP FedBuff at the same z and clip (the aggregator's Gaussian)."""
    config = train_config(task)
    evaluator, local = trainers(task, workers, seed)
    model = {k: np.array(v, copy=True) for k, v in evaluator.initial_weights().items()}
    privacy = PrivacyConfig("central", clip, noise_multiplier, Budget(None, DELTA))
    strategy = PrivateStrategy(
        unit_fedbuff(workers), privacy, np.random.default_rng(seed), per_release=workers
    )
    for _ in range(rounds):
        plain_round(strategy, model, deltas(model, local, config))
    return accuracy(evaluator, model)


def calibrated(epsilon: float, rounds: int) -> float:
    """The z at which ``rounds`` releases of every worker spend ``epsilon`` at ``DELTA``."""
    return calibrate_noise_multiplier(
        epsilon, DELTA, lambda z: Ledger().add(GaussianEvent(z), rounds)
    )


def run(
    task: str,
    seed: int,
    workers: int,
    rounds: int,
    clip: float,
    noise_multiplier: float | None = None,
) -> tuple[float, float, float, float]:
    """Test accuracy in the clear and under secure aggregation, the secure run's CPU seconds and
    the largest delta norm it saw.

    Each path gets its own, identically seeded trainers: their minibatch order is the same.
    """
    config = train_config(task)
    evaluator, local = trainers(task, workers, seed)
    plain = {k: np.array(v, copy=True) for k, v in evaluator.initial_weights().items()}
    fedbuff = unit_fedbuff(workers)
    for _ in range(rounds):
        plain_round(fedbuff, plain, deltas(plain, local, config))
    _, local = trainers(task, workers, seed)
    masked = {k: np.array(v, copy=True) for k, v in evaluator.initial_weights().items()}
    secure = secure_strategy(workers, clip, noise_multiplier)
    started, norm = time.process_time(), 0.0
    for version in range(rounds):
        updates = deltas(masked, local, config)
        norm = max(norm, largest_norm(updates))
        secure_round(secure, masked, updates, version, None if noise_multiplier is None else seed)
    cpu = time.process_time() - started
    return accuracy(evaluator, plain), accuracy(evaluator, masked), cpu, norm


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(SCHEDULES), default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--clip", type=float, default=10.0)
    parser.add_argument("--epsilons", default="", help="distributed DP at these epsilons, e.g. 4,8")
    args = parser.parse_args(argv)
    if args.epsilons:
        return private_table(args)
    print(f"{args.task}: {args.workers} workers, {args.rounds} rounds, clip {args.clip}")
    print(
        "| seed | FedBuff (clear) | secure FedBuff | difference (points) | CPU s, secure path "
        "| largest delta norm |"
    )
    print("|---|---|---|---|---|---|")
    gaps = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        clear, secure, cpu, norm = run(args.task, seed, args.workers, args.rounds, args.clip)
        gaps.append(100 * (secure - clear))
        print(
            f"| {seed} | {clear:.4f} | {secure:.4f} | {gaps[-1]:+.2f} | {cpu:.1f} | {norm:.2f} |",
            flush=True,
        )
    largest = np.max(np.abs(gaps))
    print(f"mean difference {np.mean(gaps):+.2f} points, largest |difference| {largest:.2f}")


def private_table(args: argparse.Namespace) -> None:
    """The secure path with distributed DP at each epsilon, beside the clear one without DP."""
    print(
        f"{args.task}: {args.workers} workers, {args.rounds} rounds, clip {args.clip}, delta 1e-5"
    )
    print("| seed | epsilon | z | FedBuff, no DP | central DP FedBuff | secure + distributed DP |")
    print("|---|---|---|---|---|---|")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for target in (float(e) for e in args.epsilons.split(",")):
            z = calibrated(target, args.rounds)
            clear, noisy, _, _ = run(args.task, seed, args.workers, args.rounds, args.clip, z)
            central = central_accuracy(args.task, seed, args.workers, args.rounds, args.clip, z)
            print(
                f"| {seed} | {target:g} | {z:.3f} | {clear:.4f} | {central:.4f} | {noisy:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
