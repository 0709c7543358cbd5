"""Overhead of one rate-limit check (moving window ``hit`` + window stats), p50/p95.

    .venv/bin/python scripts/bench_rate_limit.py [--redis-url redis://127.0.0.1:6379/0]
        [--iterations 3000]

Measures the limiter as the API calls it (``RateLimiter.hit``: one atomic Lua
test-and-hit plus one read of the window for the headers) against Redis and against
the in-memory storage of the embedded mode. Keys use a throw-away prefix and are
deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import redis

from app.core.config import RateLimitRules, Settings
from app.core.rate_limit import RateLimiter


async def measure(limiter: RateLimiter, rule: str, iterations: int) -> list[float]:
    for i in range(50):  # warm-up: connections, script loading
        await limiter.hit(rule, "warmup", str(i))
    samples = []
    for i in range(iterations):
        key = str(i % 100)  # 100 users, each well below the limit
        start = time.perf_counter()
        await limiter.hit(rule, "bench", key)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(
        f"{name:<28} n={len(samples):>5}  p50={p50:.3f} ms  p95={p95:.3f} ms  "
        f"p99={p99:.3f} ms  max={ordered[-1]:.3f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    rule = "100000/hour"
    rules = RateLimitRules(api=rule)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"

    memory = RateLimiter(Settings(environment="test", rate_limits=rules))
    report("memory (embedded)", await measure(memory, rule, args.iterations))
    await memory.aclose()

    settings = Settings(
        environment="test",
        redis_url=args.redis_url,
        rate_limits=rules,
        rate_limit_key_prefix=prefix,
    )
    distributed = RateLimiter(settings)
    try:
        report("redis (distributed)", await measure(distributed, rule, args.iterations))
    finally:
        await distributed.aclose()
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)


if __name__ == "__main__":
    asyncio.run(main())
