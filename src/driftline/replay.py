"""``driftline replay``: a JSONL file of prediction events through the core, outputs to files.

This is the reference behaviour of the core: the Kafka service runs the same
:class:`~driftline.pipeline.Pipeline` on the same events and must produce the same outputs.
Blank lines are skipped; every other line is one event (a bad one becomes a dead letter).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from driftline.pipeline import Pipeline, PipelineCounters, PipelineOutput

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ReplaySinks:
    alerts: BinaryIO
    retrain_requests: BinaryIO | None
    dead_letters: BinaryIO | None
    comparisons: BinaryIO | None = None
    """Comparison events (``--comparisons-out``), one JSON line each."""


def read_batches(
    source: BinaryIO, batch_size: int, chunk_bytes: int = 1 << 22
) -> Iterator[tuple[list[int], list[bytes]]]:
    """Yield (line numbers, line bytes) batches of the non-blank lines of ``source``.

    Reads big chunks and splits them at once; only a chunk holding blank lines or ``\\r``
    is walked line by line.
    """
    numbers: list[int] = []
    lines: list[bytes] = []
    first_number = 1
    carry = b""
    while True:
        chunk = source.read(chunk_bytes)
        data = carry + chunk
        parts = data.split(b"\n") if data else []
        carry = parts.pop() if chunk and parts else b""
        if parts:
            if b"\r" not in data and all(map(bytes.strip, parts)):
                numbers.extend(range(first_number, first_number + len(parts)))
                lines.extend(parts)
            else:
                for offset, part in enumerate(parts):
                    payload = part.rstrip(b"\r")
                    if payload.strip():
                        numbers.append(first_number + offset)
                        lines.append(payload)
            first_number += len(parts)
        while len(lines) >= batch_size:
            yield numbers[:batch_size], lines[:batch_size]
            del numbers[:batch_size], lines[:batch_size]
        if not chunk:
            break
    if lines:
        yield numbers, lines


def dead_letter_record(line: int, reason: str, message: str, payload: bytes) -> bytes:
    """One dead letter as a JSON line (the original bytes base64-encoded, exactly)."""
    return orjson.dumps(
        {
            "line": line,
            "reason": reason,
            "message": message,
            "payload_base64": base64.b64encode(payload).decode("ascii"),
        }
    )


def write_output(output: PipelineOutput, numbers: list[int], sinks: ReplaySinks) -> None:
    for alert in output.alerts:
        sinks.alerts.write(alert.to_json() + b"\n")
    if sinks.retrain_requests is not None:
        for request in output.retrain_requests:
            sinks.retrain_requests.write(request.to_json() + b"\n")
    if sinks.comparisons is not None:
        for comparison in output.comparisons:
            sinks.comparisons.write(comparison.to_json() + b"\n")
    if sinks.dead_letters is not None:
        for dead in output.dead_letters:
            record = dead_letter_record(
                numbers[dead.index], dead.reason.value, dead.message, dead.payload
            )
            sinks.dead_letters.write(record + b"\n")


def replay(
    pipeline: Pipeline,
    events: Path,
    sinks: ReplaySinks,
    batch_size: int = DEFAULT_BATCH_SIZE,
    observe: Callable[[PipelineOutput], None] | None = None,
) -> PipelineCounters:
    """Run every event of ``events`` through ``pipeline`` in order, writing outputs to sinks
    (and handing each batch's output to ``observe``, when given)."""
    with events.open("rb") as source:
        for numbers, lines in read_batches(source, batch_size):
            output = pipeline.process(lines)
            for notice in output.learning_started:
                log.info("%s", notice.message())
            for (model_id, model_version), trace in output.internal_errors:
                log.error(
                    "model %s version %s quarantined (its events become dead letters, reason "
                    "internal_error) after an internal error:\n%s",
                    model_id,
                    model_version,
                    trace,
                )
            for name, trace in output.comparison_errors:
                log.error("comparison %s stopped by an internal error:\n%s", name, trace)
            write_output(output, numbers, sinks)
            if observe is not None:
                observe(output)
    return pipeline.counters
