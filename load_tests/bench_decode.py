"""Benchmark: decoding prediction events with ``driftline.events.decode_batch``.

Decodes batches of synthetic events (20 numeric features, one scalar prediction) on one
core and prints one table: events/s for RFC 3339 and epoch-millisecond timestamps, without
and with a ``request_id`` on every event (shadow-mode traffic: two events per request), next
to a naive baseline measured in the same run (``orjson.loads`` per message plus a
per-event Python walk over the dict building per-model columns) and the ``orjson.loads``
ceiling (parsing alone, no validation, no columns). A second table decodes events of the
credit-scoring shape (6 numbers, 3 category strings, 1 boolean), with the native decoder and
with the Python one alone (``native=False``), next to the same naive baseline.

Run: ``.venv/bin/python load_tests/bench_decode.py [--events N] [--batch B] [--repeat R]``
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench_core import cpu_model
from driftline.events import decode_batch

FEATURES = 20
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_payloads(
    count: int, timestamps: str, precision: str, request_ids: bool = False, seed: int = 7
) -> list[bytes]:
    """Synthetic events: 2 model versions, 20 numeric features, epoch-ms or RFC 3339 time,
    and with ``request_ids`` a ``request_id`` shared by each two consecutive events."""
    rng = random.Random(seed)
    payloads = []
    for i in range(count):
        moment = START + timedelta(milliseconds=37 * i)
        if timestamps == "rfc3339":
            when: Any = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        else:
            when = int(moment.timestamp() * 1000)
        values = [rng.gauss(0.0, 1.0) * 10 ** (j % 4) for j in range(FEATURES)]
        if precision == "short":
            values = [round(v, 3) for v in values]
        event = {
            "event_id": f"evt-{i:09d}",
            "model_id": "fraud-detector",
            "model_version": "v3" if i % 10 else "v4",
            "timestamp": when,
            "features": {f"feature_{j:02d}": v for j, v in enumerate(values)},
            "prediction": round(rng.random(), 4),
        }
        if request_ids:
            event["request_id"] = f"req-{i // 2:09d}"
        payloads.append(orjson.dumps(event))
    return payloads


def make_mixed_payloads(count: int, seed: int = 7) -> list[bytes]:
    """Credit-scoring-shaped events: 6 numbers, 3 category strings and 1 boolean."""
    rng = random.Random(seed)
    countries = ["GB", "FR", "DE", "ES", "IT", "NL"]
    employment = ["employed", "self_employed", "unemployed", "retired"]
    payloads = []
    for i in range(count):
        moment = START + timedelta(milliseconds=37 * i)
        features: dict[str, Any] = {
            "amount": round(rng.lognormvariate(7, 1), 2),
            "income": rng.randrange(10_000, 200_000),
            "age": rng.randrange(18, 90),
            "credit_score": rng.randrange(300, 850),
            "num_accounts": rng.randrange(0, 10),
            "debt_ratio": round(rng.random(), 3),
            "country": rng.choice(countries),
            "employment": rng.choice(employment),
            "channel": rng.choice(["web", "mobile", "branch"]),
            "has_mortgage": rng.random() < 0.4,
        }
        event = {
            "event_id": f"evt-{i:09d}",
            "model_id": "credit",
            "model_version": "1",
            "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "features": features,
            "prediction": round(rng.random(), 4),
        }
        payloads.append(orjson.dumps(event))
    return payloads


def naive_decode(payloads: Sequence[bytes]) -> dict[tuple[str, str], dict[str, list[Any]]]:
    """The baseline: one ``orjson.loads`` and one Python walk over every event."""
    models: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for payload in payloads:
        event = orjson.loads(payload)
        key = (event["model_id"], str(event["model_version"]))
        columns = models.setdefault(key, {"__time__": []})
        stamp = event["timestamp"]
        if isinstance(stamp, str):
            seconds = datetime.fromisoformat(stamp).timestamp()
        else:
            seconds = stamp / 1000 if stamp >= 1e11 else float(stamp)
        columns["__time__"].append(seconds)
        for name, value in event["features"].items():
            if not isinstance(value, int | float | str | bool | None):
                raise ValueError(name)
            columns.setdefault(name, []).append(value)
        columns.setdefault("__prediction__", []).append(event.get("prediction"))
    return models


def loads_only(payloads: Sequence[bytes]) -> list[Any]:
    loads = orjson.loads
    return [loads(payload) for payload in payloads]


def events_per_second(
    decoders: dict[str, Callable[[Sequence[bytes]], object]],
    batches: list[list[bytes]],
    repeat: int,
) -> dict[str, float]:
    """Best-of-``repeat`` throughput of each decoder over every batch.

    Rounds interleave the decoders so they see the same machine load, and time is CPU
    time of this process (``time.process_time``), which is robust on a shared machine.
    """
    count = sum(map(len, batches))
    best = dict.fromkeys(decoders, float("inf"))
    for _ in range(repeat):
        for name, decode in decoders.items():
            started = time.process_time()
            for batch in batches:
                decode(batch)
            best[name] = min(best[name], time.process_time() - started)
    return {name: count / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    python = platform.python_version()
    print(f"machine: {cpu_model()}, python {python}, orjson {orjson.__version__}")
    print(
        f"{args.events} events of {FEATURES} numeric features, batches of {args.batch}, "
        f"best of {args.repeat} (CPU time), one core"
    )
    header = (
        f"{'timestamp':<10} {'numbers':<8} {'request_id':<10} {'bytes/ev':>8} "
        f"{'decode_batch':>13} {'naive':>10} {'loads only':>11} {'vs naive':>9}"
    )
    print(header)
    print("-" * len(header))
    cases = [
        (timestamps, precision, request_ids)
        for timestamps in ("rfc3339", "epoch_ms")
        for precision in ("short", "full")
        for request_ids in (False, True)
    ]
    for timestamps, precision, request_ids in cases:
        payloads = make_payloads(args.events, timestamps, precision, request_ids)
        batches = [payloads[i : i + args.batch] for i in range(0, len(payloads), args.batch)]
        decoded = decode_batch(batches[0])
        assert not decoded.dead_letters, decoded.dead_letters[:1]
        decoders = {"ours": decode_batch, "naive": naive_decode, "loads": loads_only}
        rates = events_per_second(decoders, batches, args.repeat)
        ours, naive, ceiling = rates["ours"], rates["naive"], rates["loads"]
        size = sum(map(len, payloads)) / len(payloads)
        shadow = "paired" if request_ids else "absent"
        print(
            f"{timestamps:<10} {precision:<8} {shadow:<10} {size:>8.0f} {ours:>11,.0f}/s "
            f"{naive:>8,.0f}/s {ceiling:>9,.0f}/s {ours / naive:>8.2f}x"
        )
    print("numbers: short = rounded to 3 decimals; full = full-precision doubles (17 digits)")
    print("request_id: absent = none; paired = one on every event, shared by two events")

    payloads = make_mixed_payloads(args.events)
    batches = [payloads[i : i + args.batch] for i in range(0, len(payloads), args.batch)]
    assert not decode_batch(batches[0]).dead_letters
    rates = events_per_second(
        {
            "native": decode_batch,
            "python": lambda batch: decode_batch(batch, native=False),
            "naive": naive_decode,
        },
        batches,
        args.repeat,
    )
    print()
    header = f"{'credit-scoring shape':<22} {'events/s':>10} {'vs python':>10} {'vs naive':>9}"
    print(header)
    print("-" * len(header))
    for name in ("native", "python", "naive"):
        print(
            f"{'decode_batch ' + name if name != 'naive' else 'naive':<22} "
            f"{rates[name]:>10,.0f} {rates[name] / rates['python']:>9.2f}x "
            f"{rates[name] / rates['naive']:>8.2f}x"
        )


if __name__ == "__main__":
    main()
