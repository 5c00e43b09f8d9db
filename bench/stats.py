"""What one load run measured, whichever driver ran it."""

from __future__ import annotations

from dataclasses import dataclass


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True)
class Stats:
    requests: int  # answered with 200
    seconds: float
    p50_s: float
    p99_s: float
    errors: int  # connection failures and non-200 answers

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def of(cls, latencies_s: list[float], seconds: float, errors: int) -> Stats:
        return cls(
            len(latencies_s), seconds, percentile(latencies_s, 50), percentile(latencies_s, 99), errors
        )

    @classmethod
    def mean(cls, runs: list[Stats]) -> Stats:
        """Runs of one load taken in turns with another: counts add up, percentiles average."""
        n = len(runs)
        return cls(
            sum(r.requests for r in runs),
            sum(r.seconds for r in runs),
            sum(r.p50_s for r in runs) / n,
            sum(r.p99_s for r in runs) / n,
            sum(r.errors for r in runs),
        )
