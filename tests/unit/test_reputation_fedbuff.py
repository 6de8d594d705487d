"""FedBuff with reputation: an opponent is excluded after enough evidence, an outlier is not."""

from __future__ import annotations

import numpy as np

from aggregator.core.aggregator import Aggregator, Applied
from aggregator.core.identity import IdentityPolicy, open_identity_refusal
from aggregator.core.reputation_fedbuff import ReputationFedBuff
from aggregator.core.staleness import Constant
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Contribution
from aggregator.factory import build_strategy
from aggregator.settings import AggregatorSettings
from schemas.messages import ClientUpdate

HONEST = {"a": [1.0, 1.0, 0.2, 0.0], "b": [1.0, 0.8, -0.2, 0.0], "c": [0.9, 1.0, 0.0, 0.1]}
#: A non-IID outlier: 45 degrees from the consensus, with a pull (the last weight) only it has.
OUTLIER = {"o": [0.5, 0.5, 0.0, 0.7]}
#: A sign flipper.
ATTACKER = {"x": [-1.0, -1.0, 0.0, 0.0]}
VOTES = {**HONEST, **OUTLIER, **ATTACKER}


def contribution(worker: str, i: int, vector: list[float] | None = None) -> Contribution:
    arrays = {"w": np.array(vector or VOTES[worker], np.float32)}
    return Contribution(f"{worker}-{i}", worker, 0, 1, arrays)


def releases(strategy: ReputationFedBuff, model: dict[str, np.ndarray], count: int) -> None:
    """``count`` buffers of five: one update from each worker in ``VOTES``."""
    for i in range(count):
        for worker in VOTES:
            strategy.add(model, contribution(worker, i))


def test_an_opponent_is_excluded_after_the_evidence_and_an_outlier_is_not() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = ReputationFedBuff(buffer_size=5, staleness=Constant())

    releases(strategy, model, 3)
    excluded_before_evidence = set(strategy.reputation.excluded)
    releases(strategy, model, 1)

    assert excluded_before_evidence == set()
    assert strategy.reputation.excluded == {"x"}
    assert strategy.reputation.reputations["o"] > strategy.reputation.config.threshold


def test_an_excluded_update_weighs_nothing_takes_no_place_and_says_why() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = ReputationFedBuff(buffer_size=5, staleness=Constant())
    releases(strategy, model, 4)
    before = model["w"].copy()

    excluded = strategy.add(model, contribution("x", 9))
    for worker in [*HONEST, *OUTLIER, "a"]:  # five places, none of them x's
        strategy.add(model, contribution(worker, 9))

    assert excluded.weight == 0.0 and not excluded.stepped
    assert excluded.excluded is not None and excluded.excluded.startswith("reputation -")
    rows = [VOTES[w] for w in [*HONEST, *OUTLIER, "a"]]
    np.testing.assert_allclose(model["w"] - before, np.mean(rows, axis=0), atol=1e-6)


def test_reputation_and_exclusion_survive_a_checkpoint() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = ReputationFedBuff(buffer_size=5, staleness=Constant())
    releases(strategy, model, 4)
    strategy.add(model, contribution("x", 9))  # observed, awaiting the next release
    strategy.add(model, contribution("a", 9))
    scalars, arrays = strategy.state()
    restored = ReputationFedBuff(buffer_size=5, staleness=Constant())

    restored.restore(scalars, {k: np.array(v) for k, v in arrays.items()})

    assert restored.reputation.reputations == strategy.reputation.reputations
    assert restored.reputation.counts == strategy.reputation.counts
    assert restored.reputation.excluded == {"x"}
    assert list(restored.observed) == ["x"]
    np.testing.assert_allclose(restored.observed["x"], VOTES["x"])
    assert restored.pending() == strategy.pending() == 1


def test_the_reputation_rule_refuses_to_start_with_open_identity() -> None:
    settings = AggregatorSettings(strategy="fedbuff", aggregation="reputation")

    refusal = open_identity_refusal("open", settings.identity_keyed_defences())

    assert isinstance(build_strategy(settings), ReputationFedBuff)
    assert refusal is not None and "--aggregation reputation" in refusal
    assert open_identity_refusal("strict", settings.identity_keyed_defences()) is None


def test_the_core_applies_an_excluded_update_at_weight_zero_with_the_reason() -> None:
    weights = {"w": np.zeros(4, np.float32)}
    state = AggregatorState(run_id="r", version=0, weights=weights, applied=AppliedWindow(100))
    strategy = ReputationFedBuff(buffer_size=5, staleness=Constant())
    core = Aggregator(state, strategy, max_staleness=None, identity=IdentityPolicy("strict"))

    def handle(worker: str, i: int) -> object:
        update = ClientUpdate(
            update_id=f"update-{worker}-{i:04d}",
            worker_id=worker,
            base_version=core.state.version,
            num_examples=1,
            update_kind="delta",
            train_seconds=0.0,
            arrays={"w": np.array(VOTES[worker], np.float32)},
        )
        return core.handle(update, sender=worker)

    for i in range(4):
        for worker in VOTES:
            handle(worker, i)
    outcome = handle("x", 9)

    assert isinstance(outcome, Applied) and outcome.weight == 0.0
    assert outcome.excluded is not None and outcome.excluded.startswith("reputation")
    assert core.state.version == 4 and core.state.counters.applied == 21
