"""The ``driftline`` command line."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import yaml
from rich.console import Console

from driftline import __version__
from driftline.config import ConfigError, Settings, load_settings
from driftline.demo.options import add_arguments as add_demo_arguments
from driftline.performance.task import Task
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import FeatureKind, ProfileError, save_profile
from driftline.profile_io import build_profile_from_file
from driftline.replay import DEFAULT_BATCH_SIZE, ReplaySinks, replay
from driftline.summary import print_summary

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _kind_override(text: str) -> tuple[str, FeatureKind]:
    name, sep, kind = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected FEATURE=KIND, got {text!r}")
    try:
        return name, FeatureKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in FeatureKind)
        raise argparse.ArgumentTypeError(f"unknown kind {kind!r} (one of {kinds})") from None


def _decision_threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number strictly between 0 and 1, got {text!r}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline", description="Streaming drift monitor for ML models on Kafka."
    )
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    profile = commands.add_parser("profile", help="reference profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    build = profile_commands.add_parser("build", help="build a reference profile from data")
    build.add_argument("data", type=Path, help="CSV, Parquet or JSONL file")
    build.add_argument("--model-id", required=True)
    build.add_argument("--model-version", required=True)
    build.add_argument("--output", "-o", type=Path, required=True, help="profile JSON to write")
    build.add_argument("--format", choices=("csv", "parquet", "jsonl"), help="default: by suffix")
    build.add_argument(
        "--kind",
        type=_kind_override,
        action="append",
        default=[],
        metavar="FEATURE=KIND",
        help="override the inferred kind (numeric, categorical, boolean); repeatable",
    )
    build.add_argument("--top-k", type=int, default=20, help="categories kept per feature")
    build.add_argument(
        "--task",
        type=Task,
        choices=list(Task),
        help="the model's task, for the reference performance recorded when the data has "
        "__prediction__ and __label__ (default: inferred from them)",
    )
    build.add_argument(
        "--decision-threshold",
        type=_decision_threshold,
        default=0.5,
        metavar="P",
        help="binary probabilities: the predicted class is positive when p >= P (default 0.5)",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar")

    run_replay = commands.add_parser("replay", help="run the core over a JSONL file of events")
    run_replay.add_argument("events", type=Path, help="JSONL file, one prediction event a line")
    run_replay.add_argument("--config", "-c", type=Path, required=True)
    run_replay.add_argument("--alerts-out", type=Path, help="default: standard output")
    run_replay.add_argument("--retrain-out", type=Path)
    run_replay.add_argument("--dead-letters-out", type=Path)
    run_replay.add_argument(
        "--comparisons-out", type=Path, help="champion / challenger verdict changes (JSONL)"
    )
    run_replay.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)

    report = commands.add_parser(
        "report", help="replay events and draw their drift as one self-contained HTML page"
    )
    report.add_argument("events", type=Path, help="JSONL file, one prediction event a line")
    report.add_argument("--config", "-c", type=Path, required=True)
    report.add_argument("--output", "-o", type=Path, required=True, help="HTML file to write")
    report.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)

    run = commands.add_parser("run", help="run the monitor on Kafka (see README, Production)")
    run.add_argument("--config", "-c", type=Path, required=True)

    local_kafka = commands.add_parser(
        "local-kafka", help="run a single-node Apache Kafka broker (KRaft) from its Maven jars"
    )
    local_kafka.add_argument("--port", type=int, help="broker port (default: a free one)")
    local_kafka.add_argument(
        "--data-dir", type=Path, help="broker data, kept across runs (default: a temporary dir)"
    )

    topics = commands.add_parser("topics", help="Kafka topics")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True)
    create = topics_commands.add_parser("create", help="create missing topics, report differences")
    create.add_argument("--config", "-c", type=Path, required=True)

    bridge = commands.add_parser(
        "alertmanager-bridge",
        help="push the alerts topic to Alertmanager (see README, Alerting and dashboards)",
    )
    bridge.add_argument("--config", "-c", type=Path, required=True)
    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate and print the effective settings")
    check.add_argument("--config", "-c", type=Path, required=True)

    demo = commands.add_parser(
        "demo", help="a drifting model's traffic through a local Kafka, watched live"
    )
    add_demo_arguments(demo)
    return parser


@contextlib.contextmanager
def _open_sink(path: Path | None, default: BinaryIO | None) -> Iterator[BinaryIO | None]:
    if path is None:
        yield default
        return
    with path.open("wb") as handle:
        yield handle


def _cmd_profile_build(args: argparse.Namespace, console: Console) -> int:
    profile = build_profile_from_file(
        args.data,
        model_id=args.model_id,
        model_version=args.model_version,
        format=args.format,
        kinds=dict(args.kind) or None,
        top_k=args.top_k,
        progress=not args.no_progress and console.is_terminal,
        task=args.task,
        decision_threshold=args.decision_threshold,
    )
    save_profile(profile, args.output)
    console.print(
        f"profile {profile.profile_id} for {profile.model_id} v{profile.model_version}: "
        f"{profile.row_count:,} rows, {len(profile.features)} features -> {args.output}"
    )
    performance = profile.performance
    if performance is not None:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(performance.metrics.items()))
        console.print(
            f"reference performance ({performance.task.task.value}, "
            f"{performance.task.prediction_kind} predictions, {performance.pairs:,} pairs): "
            f"{metrics}",
            highlight=False,
            markup=False,
        )
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace, console: Console) -> int:
    if args.batch_size <= 0:
        raise ConfigError("--batch-size: must be a positive number")
    settings = load_settings(args.config)
    pipeline = Pipeline(build_plan(settings))
    if not args.events.is_file():
        raise ConfigError(f"{args.events}: no such events file")
    with (
        _open_sink(args.alerts_out, sys.stdout.buffer) as alerts,
        _open_sink(args.retrain_out, None) as retrain,
        _open_sink(args.dead_letters_out, None) as dead,
        _open_sink(args.comparisons_out, None) as comparisons,
    ):
        assert alerts is not None
        sinks = ReplaySinks(alerts, retrain, dead, comparisons)
        replay(pipeline, args.events, sinks, args.batch_size)
    print_summary(pipeline, console)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace, console: Console) -> int:
    from datetime import UTC, datetime

    from driftline.report.offline import report_page

    if args.batch_size <= 0:
        raise ConfigError("--batch-size: must be a positive number")
    settings = load_settings(args.config)
    if not args.events.is_file():
        raise ConfigError(f"{args.events}: no such events file")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    page = report_page(
        settings,
        args.events,
        generated=f"generated {now} by driftline {__version__} from {args.events}",
        batch_size=args.batch_size,
    )
    args.output.write_text(page, encoding="utf-8")
    console.print(f"drift report -> {args.output} ({len(page) / 1e6:.1f} MB)")
    return EXIT_OK


def effective_settings(settings: Settings) -> str:
    """The settings as YAML, defaults filled in."""
    data = settings.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False)


def _cmd_config_check(args: argparse.Namespace, console: Console) -> int:
    settings = load_settings(args.config, os.environ)
    build_plan(settings)  # loads and checks every reference profile and threshold
    sys.stdout.write(effective_settings(settings))
    console.print(f"{args.config}: OK")
    return EXIT_OK


async def _sasl_rejection(settings: Settings, timeout: float = 10.0) -> str | None:
    """Why the brokers rejected our SASL login, if they did (None: not an auth failure).

    aiokafka reports a failed login at start only as "Unable to bootstrap"; one direct
    connection per bootstrap server, with the same options, recovers the broker's answer.
    """
    import asyncio

    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        IllegalSaslStateError,
        KafkaError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )

    from driftline.service.kafka_clients import connection_options

    kafka = settings.kafka
    if not kafka.security.security_protocol.startswith("SASL"):
        return None
    options = connection_options(kafka)
    del options["bootstrap_servers"]
    rejected = (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError)
    for server in kafka.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host.strip("[]"), int(port), **options), timeout
            )
        except rejected as exc:
            return f"{server.strip()}: {exc}"
        except (OSError, ValueError, KafkaError, TimeoutError):
            continue
        conn.close()
    return None


def _kafka_failure(settings: Settings, exc: Exception) -> str:
    """The one-line message for a Kafka error that stopped a command, naming a failed login
    (user and mechanism, never the password) as such."""
    import asyncio

    from aiokafka.errors import (
        IllegalSaslStateError,
        KafkaConnectionError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )

    security = settings.kafka.security
    causes: list[BaseException] = [exc]  # the error and what it wraps, if anything
    while len(causes) < 10:
        wrapped = causes[-1].__cause__ or causes[-1].__context__
        if wrapped is None:
            break
        causes.append(wrapped)
    reason: str | None = None
    rejected = [c for c in causes if isinstance(c, SaslAuthenticationFailed)]
    rejected += [c for c in causes if isinstance(c, UnsupportedSaslMechanismError)]
    if rejected:
        reason = str(rejected[0])
    elif any(isinstance(c, IllegalSaslStateError | KafkaConnectionError) for c in causes):
        reason = asyncio.run(_sasl_rejection(settings))
    if reason is None:
        return f"error: {exc}"
    return (
        f"error: authentication failed: Kafka rejected user {security.sasl_username!r} "
        f"({security.sasl_mechanism} over {security.security_protocol}): {reason}; check "
        "kafka.security.sasl_username / sasl_password / sasl_mechanism"
    )


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from aiokafka.errors import KafkaError

    from driftline.service.runner import run_service
    from driftline.service.topics import TopicError

    settings = load_settings(args.config, os.environ)
    try:
        return run_service(settings)
    except TopicError as exc:
        console.print(f"error: {exc}", style="red", markup=False, highlight=False)
        return EXIT_FAILURE
    except KafkaError as exc:
        message = _kafka_failure(settings, exc)
        console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        return EXIT_FAILURE


def _cmd_alertmanager_bridge(args: argparse.Namespace, console: Console) -> int:
    from aiokafka.errors import KafkaError

    from driftline.alertmanager.bridge import run_bridge

    settings = load_settings(args.config, os.environ)
    if not settings.alertmanager.urls:
        raise ConfigError(
            f"{args.config}: alertmanager.urls: at least one Alertmanager URL is required "
            "to run the bridge"
        )
    try:
        return run_bridge(settings)
    except KafkaError as exc:
        message = _kafka_failure(settings, exc)
        console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        return EXIT_FAILURE


def _cmd_topics_create(args: argparse.Namespace, console: Console) -> int:
    import asyncio

    from aiokafka.errors import KafkaError

    from driftline.service.topics import create_topics, is_blocking

    settings = load_settings(args.config, os.environ)
    try:
        report = asyncio.run(create_topics(settings))
    except KafkaError as exc:
        message = _kafka_failure(settings, exc)
        console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        return EXIT_FAILURE
    for line in report:
        console.print(line, markup=False, highlight=False)
    blocking = [line for line in report if line.startswith("differs: ") and is_blocking(line)]
    if blocking:
        console.print(
            f"error: {len(blocking)} difference(s) above: `driftline run` refuses to start "
            "until they are fixed",
            style="red",
            markup=False,
            highlight=False,
        )
        return EXIT_FAILURE
    return EXIT_OK


def _cmd_local_kafka(args: argparse.Namespace, console: Console) -> int:
    from driftline.localkafka import run_local_kafka

    return run_local_kafka(args.port, args.data_dir)


def _cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from driftline.demo.kafka_demo import run_demo

    return run_demo(args, console)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    handlers = {
        "profile": _cmd_profile_build,
        "replay": _cmd_replay,
        "report": _cmd_report,
        "config": _cmd_config_check,
        "run": _cmd_run,
        "alertmanager-bridge": _cmd_alertmanager_bridge,
        "topics": _cmd_topics_create,
        "local-kafka": _cmd_local_kafka,
        "demo": _cmd_demo,
    }
    try:
        return handlers[args.command](args, console)
    except (ConfigError, ProfileError) as exc:
        console.print(f"error: {exc}", style="red", highlight=False, markup=False)
        return EXIT_USAGE
    except OSError as exc:
        console.print(f"error: {exc}", style="red", highlight=False, markup=False)
        return EXIT_USAGE
