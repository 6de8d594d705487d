"""Names of every exchange and queue in a federation, derived from its namespace."""

from __future__ import annotations

from dataclasses import dataclass

#: Routing keys on the models exchange.
BROADCAST_KEY = "broadcast"
#: The final model of a run, kept for workers that attach after the end (``Names.final_queue``).
FINAL_KEY = "final"
#: Routing keys on the inbox exchange.
UPDATE_KEY = "update"
REQUEST_KEY = "request"
SECURE_KEY = "secure"


def worker_key(worker_id: str) -> str:
    """Routing key that reaches exactly one worker's model queue."""
    return f"worker.{worker_id}"


@dataclass(frozen=True)
class Names:
    """All resource names of one federation (namespace ``ns``)."""

    namespace: str

    @property
    def models_exchange(self) -> str:
        return f"{self.namespace}.models"

    @property
    def inbox_exchange(self) -> str:
        return f"{self.namespace}.inbox"

    @property
    def results_queue(self) -> str:
        return f"{self.namespace}.results"

    @property
    def requests_queue(self) -> str:
        return f"{self.namespace}.requests"

    @property
    def secure_queue(self) -> str:
        """Secure aggregation's protocol messages from workers (keys, shares, masked inputs)."""
        return f"{self.namespace}.secure"

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def status_exchange(self) -> str:
        """Fanout to the status queue; its own exchange, so no worker may bind to it."""
        return f"{self.namespace}.status"

    @property
    def status_queue(self) -> str:
        return f"{self.namespace}.status"

    @property
    def final_queue(self) -> str:
        """The run's final model, kept after the end for workers that attach late (only the
        aggregator writes it; workers read it without consuming)."""
        return f"{self.namespace}.final"

    @property
    def aggregator_lease(self) -> str:
        """An exclusive queue whose holder is the federation's one active aggregator (see
        aggregator/shell/lease.py)."""
        return f"{self.namespace}.aggregator"

    def worker_queue(self, worker_id: str) -> str:
        return f"{self.namespace}.models.{worker_id}"

    @property
    def claim_prefix(self) -> str:
        return f"{self.namespace}.partition."

    def partition_claim(self, index: int) -> str:
        """Exclusive queue whose existence says "partition ``index`` is taken" (see
        worker/claim.py).
        """
        return f"{self.claim_prefix}{index}"

    def queues(self) -> list[str]:
        """The federation's durable queues (worker queues and claims are per connection)."""
        return [
            self.results_queue,
            self.requests_queue,
            self.dead_queue,
            self.status_queue,
            self.secure_queue,
            self.final_queue,
        ]

    def exchanges(self) -> list[str]:
        return list(self.exchange_kinds())

    def exchange_kinds(self) -> dict[str, str]:
        """Each shared exchange and its type."""
        return {
            self.models_exchange: "direct",
            self.inbox_exchange: "direct",
            self.dead_exchange: "fanout",
            self.status_exchange: "fanout",
        }
