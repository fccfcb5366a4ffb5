"""The options of ``driftline demo``, defined once for the command line and the demo module.

Kept free of Kafka and the service so that building the command line's parser stays cheap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DURATION = 60.0
DEFAULT_RATE = 1000.0
DEFAULT_DIRECTORY = Path("out/demo")
DEFAULT_OFFLINE_EVENTS = 60_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``driftline demo``."""
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help=f"how long to stream events (default {DEFAULT_DURATION:.0f})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="EVENTS_PER_S",
        help=f"prediction events per second (default {DEFAULT_RATE:,.0f})",
    )
    parser.add_argument(
        "--no-live",
        action="store_true",
        help="no live view: log alerts as they arrive; exit 1 unless an alert and a retrain "
        "request arrived",
    )
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="use this Kafka cluster instead of starting a local broker",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="no Kafka: generate a JSONL file of events and replay it (`driftline replay`)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_OFFLINE_EVENTS,
        help="prediction events of the --offline demo (each one also gets a feedback event)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_DIRECTORY,
        help=f"where the demo writes its files (default {DEFAULT_DIRECTORY})",
    )
