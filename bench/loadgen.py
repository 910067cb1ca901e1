"""A bounded HTTP/1.1 load generator for the token endpoint benchmark (stdlib asyncio).

Bounded three ways: a fixed number of requests, a time limit, and a fixed number of
requests in flight. It talks to 127.0.0.1 only. Each request is a new connection with
``Connection: close`` (gunicorn's sync workers close after every response anyway).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["LoadResult", "run_load", "form_post"]

LOOPBACK = "127.0.0.1"


@dataclass
class LoadResult:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    sample: bytes = b""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies:
            return 0.0
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[
            max(0, min(98, round(p) - 1))] * 1000

    def summary(self) -> dict:
        return {"requests": self.requests, "seconds": round(self.seconds, 3),
                "rps": round(self.rps, 1), "p50_ms": round(self.percentile(50), 2),
                "p99_ms": round(self.percentile(99), 2),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


def form_post(port: int, path: str, body: str, headers: dict[str, str] | None = None) -> bytes:
    """The raw bytes of a form POST to 127.0.0.1:port."""
    raw = body.encode("ascii")
    lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}",
             "Content-Type: application/x-www-form-urlencoded",
             f"Content-Length: {len(raw)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + raw


async def _load(port: int, make_request: Callable[[int], bytes], total: int,
                concurrency: int, time_limit: float, per_request_timeout: float
                ) -> LoadResult:
    result = LoadResult()
    counter = iter(range(total))
    start = time.perf_counter()
    deadline = start + time_limit

    async def one(i: int) -> None:
        payload = make_request(i)
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            writer.write(payload)
            data = await reader.read()  # the server closes the connection
        finally:
            writer.close()
        result.latencies.append(time.perf_counter() - t0)
        status = int(data[9:12]) if data[:5] == b"HTTP/" else 0
        result.statuses[status] += 1
        if not result.sample:
            result.sample = data

    async def worker() -> None:
        for i in counter:
            if time.perf_counter() >= deadline:
                return
            try:
                await asyncio.wait_for(one(i), per_request_timeout)
            except (TimeoutError, OSError):
                result.statuses[0] += 1
            result.requests += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


def run_load(port: int, make_request: Callable[[int], bytes], *, total: int,
             concurrency: int = 8, time_limit: float = 30.0,
             per_request_timeout: float = 10.0) -> LoadResult:
    """Send at most ``total`` requests (``make_request(i)`` builds the i-th) with at most
    ``concurrency`` in flight, stopping at ``time_limit`` seconds."""
    if total <= 0 or concurrency <= 0 or time_limit <= 0:
        raise ValueError("total, concurrency and time_limit must be positive")
    return asyncio.run(_load(port, make_request, total, concurrency, time_limit,
                             per_request_timeout))
