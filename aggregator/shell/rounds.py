"""Synchronous rounds on the asynchronous pipeline: close a round once every active worker is in."""

from __future__ import annotations

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Aggregator
from aggregator.core.tracker import RunTracker
from aggregator.shell.clock import RunClock
from aggregator.shell.failpoints import Failpoints
from aggregator.shell.publisher import Publisher
from aggregator.shell.store import StateStore
from runtime.eventlog import EventLog


class RoundControl:
    """Asks a round-based strategy to step, and commits and publishes the new version if it did."""

    def __init__(
        self,
        core: Aggregator,
        *,
        active: ActiveWorkers,
        store: StateStore,
        publisher: Publisher,
        tracker: RunTracker,
        clock: RunClock,
        audit: EventLog,
        failpoints: Failpoints | None = None,
    ) -> None:
        self.core, self.active, self.store = core, active, store
        self.publisher, self.tracker, self.clock, self.audit = publisher, tracker, clock, audit
        self.failpoints = failpoints or Failpoints(None)

    def close(self) -> bool:
        """True if a round closed (a new version is persisted and published)."""
        contributors = self.core.strategy.pending()
        if not self.core.close_round(self.active.active(self.clock.now())):
            return False
        self.core.check_publishable()  # raises before anything is persisted or published
        commit = self.core.begin_commit()
        # Like applied lines, before the checkpoint: a crash in between leaves a void round line.
        self.audit.write(
            "round", version=self.core.state.version, contributors=contributors, commit=commit
        )
        self.tracker.versions(1, self.clock.now())
        self.failpoints.reached("before-checkpoint")
        self.store.persist(self.core, self.clock.elapsed())
        self.failpoints.reached("after-checkpoint")
        self.publisher.publish_version(final=False)
        self.failpoints.reached("after-publish")  # the contributions were acked with their batches
        return True
