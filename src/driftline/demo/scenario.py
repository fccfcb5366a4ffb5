"""Synthetic model traffic: seeded, reproducible prediction events with injected drift.

A :class:`Scenario` names a :class:`SyntheticModel` (feature distributions and a logistic
scoring function), a stream length and rate, a seed and a list of :class:`Drift` changes.
:func:`event_lines` turns it into prediction events (one JSON object per line, the v1
contract of ``DESIGN.md``); :func:`reference_rows` draws the drift-free training data that
a reference profile is built from.

Generation is vectorised per feature in blocks of :data:`BLOCK_SIZE` events. Every
(stream, feature, purpose, block) has its own random generator, seeded from
``[seed, stream, feature slot, purpose, block]``, so:

* the same scenario gives byte-identical lines, whatever range of it is generated;
* a drift changes only its own feature: every other feature keeps exactly the values it
  has without the drift (and the drifted feature keeps them before ``start``);
* a drifted value is a transform of the value the same event has without the drift, so a
  comparison with the drift-free scenario isolates the drift.

Ground truth: with ``labels`` every event's outcome (0/1) is drawn from the model's own
probability (a calibrated model) except where a :class:`ConceptDrift` changes the world;
with ``label_delay`` the label travels as a feedback event that much event time after its
prediction, and :func:`stream_lines` merges predictions and feedback in event-time order.

Examples
--------
>>> scenario = credit_scoring_scenario(events=3, drifts=())
>>> lines = list(event_lines(scenario))
>>> event = orjson.loads(lines[1])
>>> event["event_id"], event["timestamp"]
('credit-scoring-0-1', '2024-01-01T00:00:00.050Z')
>>> sorted(event["features"])[:3]
['age', 'amount', 'channel']
>>> 0.0 <= event["prediction"] <= 1.0
True
>>> lines == list(event_lines(scenario))
True
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson

from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE, Scalar

DriftKind = Literal["mean_shift", "scale", "category_surge", "missing_surge"]
Distribution = Literal["normal", "lognormal", "poisson", "beta"]
TimestampFormat = Literal["rfc3339", "epoch_ms", "epoch_s"]

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.intp]

BLOCK_SIZE = 8192
"""Events per generation block; part of the generator's definition (changing it changes
every generated value)."""

MOMENT_SAMPLES = 200_000
"""Draws used to estimate a numeric feature's reference mean and standard deviation."""

DRIFT_KINDS: tuple[DriftKind, ...] = ("mean_shift", "scale", "category_surge", "missing_surge")
TIMESTAMP_FORMATS: tuple[TimestampFormat, ...] = ("rfc3339", "epoch_ms", "epoch_s")

# Seed-key components: [seed, stream, slot, purpose, block].
_TRAFFIC_STREAM = 0
_REFERENCE_STREAM = 1
_VALUES = 0
_MISSING = 1
_ROUNDING = 2
_NOISE = 0  # purposes of the scoring slot (slot = number of features)
_LABELS = 1
_DELAYS = 2
_MOMENTS_SEED = 20_240_101
_Z_LIMIT = 3.0  # numeric features enter the score as z-scores winsorised at +-3
_PARAM_COUNTS: dict[str, int] = {"normal": 2, "lognormal": 2, "poisson": 1, "beta": 2}


# --------------------------------------------------------------------------- model


def _check_name(name: str) -> None:
    if not name or name.startswith("__"):
        raise ValueError(f"feature name {name!r} must be non-empty and not start with '__'")


def _check_rate(name: str, what: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: {what} must lie in [0, 1], got {value}")


@dataclass(frozen=True)
class NumericFeature:
    """A numeric model input.

    ``params`` are ``(mean, std)`` for ``normal``, ``(mu, sigma)`` of the underlying normal
    for ``lognormal``, ``(lam,)`` for ``poisson`` and ``(a, b)`` for ``beta``. Values are
    clipped to ``[lower, upper]`` and rounded to ``decimals`` (``0``: integers, rounded
    stochastically so that rounding never moves the mean; ``None``: full precision).
    ``weight`` is the feature's logit contribution per reference standard deviation.
    """

    name: str
    distribution: Distribution
    params: tuple[float, ...]
    lower: float | None = None
    upper: float | None = None
    decimals: int | None = None
    missing_rate: float = 0.0
    weight: float = 0.0

    def __post_init__(self) -> None:
        _check_name(self.name)
        expected = _PARAM_COUNTS.get(self.distribution)
        if expected is None:
            raise ValueError(f"{self.name}: unknown distribution {self.distribution!r}")
        if len(self.params) != expected or not all(math.isfinite(p) for p in self.params):
            raise ValueError(
                f"{self.name}: {self.distribution} takes {expected} finite parameter(s), "
                f"got {self.params!r}"
            )
        positive = self.params[1:] if self.distribution in ("normal", "lognormal") else self.params
        if any(p <= 0 for p in positive):
            raise ValueError(f"{self.name}: {self.distribution} scale parameters must be > 0")
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"{self.name}: lower must be below upper")
        if self.decimals is not None and self.decimals < 0:
            raise ValueError(f"{self.name}: decimals must be >= 0 or None")
        _check_rate(self.name, "missing_rate", self.missing_rate)


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical model input: ``categories`` drawn with ``shares`` (summing to 1).

    ``weights`` are the logit contributions per category (empty: all zero).
    """

    name: str
    categories: tuple[str, ...]
    shares: tuple[float, ...]
    missing_rate: float = 0.0
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.categories or len(set(self.categories)) != len(self.categories):
            raise ValueError(f"{self.name}: categories must be non-empty and unique")
        if len(self.shares) != len(self.categories):
            raise ValueError(f"{self.name}: one share per category is needed")
        if any(not 0.0 <= s <= 1.0 for s in self.shares) or abs(sum(self.shares) - 1.0) > 1e-9:
            raise ValueError(f"{self.name}: shares must lie in [0, 1] and sum to 1")
        if self.weights and len(self.weights) != len(self.categories):
            raise ValueError(f"{self.name}: one weight per category is needed")
        _check_rate(self.name, "missing_rate", self.missing_rate)


@dataclass(frozen=True)
class BooleanFeature:
    """A boolean model input, ``True`` with probability ``true_share``.

    Its categories (for :class:`Drift` of kind ``category_surge``) are ``"true"`` and
    ``"false"``; ``weight`` is the logit contribution of ``True``.
    """

    name: str
    true_share: float
    missing_rate: float = 0.0
    weight: float = 0.0

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_rate(self.name, "true_share", self.true_share)
        _check_rate(self.name, "missing_rate", self.missing_rate)


FeatureSpec: TypeAlias = NumericFeature | CategoricalFeature | BooleanFeature


@dataclass(frozen=True)
class SyntheticModel:
    """Feature distributions and the scoring function of a synthetic binary classifier.

    The prediction is ``sigmoid(intercept + sum of feature contributions + noise)`` with
    ``noise ~ N(0, noise_std)``. A numeric feature contributes ``weight`` times its z-score
    against its reference moments, winsorised at +-3; a categorical or boolean feature the
    weight of its category; a missing value nothing.
    """

    features: tuple[FeatureSpec, ...]
    intercept: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if not names:
            raise ValueError("a synthetic model needs at least one feature")
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique: {names}")
        if not self.noise_std >= 0:
            raise ValueError("noise_std must be >= 0")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> FeatureSpec:
        """The feature called ``name`` (``KeyError`` if there is none)."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)


CREDIT_SCORING_MODEL = SyntheticModel(
    features=(
        NumericFeature(
            "amount", "lognormal", (math.log(4000.0), 0.9), lower=0.0, decimals=2, weight=0.4
        ),
        NumericFeature(
            "income",
            "lognormal",
            (math.log(48_000.0), 0.55),
            lower=0.0,
            decimals=0,
            missing_rate=0.01,
            weight=-0.5,
        ),
        NumericFeature(
            "age", "normal", (41.0, 13.0), lower=18.0, upper=95.0, decimals=0, weight=-0.2
        ),
        NumericFeature(
            "credit_score",
            "normal",
            (690.0, 65.0),
            lower=300.0,
            upper=850.0,
            decimals=0,
            weight=-0.9,
        ),
        NumericFeature("num_accounts", "poisson", (3.2,), lower=0.0, decimals=0, weight=0.15),
        NumericFeature(
            "debt_ratio", "beta", (2.2, 5.0), lower=0.0, upper=1.0, decimals=3, weight=0.6
        ),
        CategoricalFeature(
            "country",
            ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR"),
            (0.38, 0.16, 0.12, 0.10, 0.08, 0.07, 0.05, 0.04),
            weights=(0.0, 0.1, -0.1, 0.0, 0.2, 0.25, -0.1, 0.5),
        ),
        CategoricalFeature(
            "employment",
            ("employed", "self_employed", "unemployed", "retired"),
            (0.62, 0.18, 0.07, 0.13),
            missing_rate=0.01,
            weights=(0.0, 0.3, 1.0, 0.1),
        ),
        CategoricalFeature(
            "channel",
            ("web", "mobile", "branch", "partner"),
            (0.45, 0.38, 0.12, 0.05),
            weights=(0.0, 0.1, -0.2, 0.4),
        ),
        BooleanFeature("has_mortgage", 0.36, weight=-0.3),
    ),
    intercept=-2.0,
    noise_std=0.3,
)
"""A loan-application default-risk model: ten features of every kind, ~1% missing income and
employment, and a default probability as its prediction."""


# --------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class Drift:
    """A change of one feature's generating distribution from event index ``start`` on.

    ``magnitude`` means, by ``kind``:

    * ``mean_shift``: shift added to the value, in reference standard deviations;
    * ``scale``: multiplier of the value's deviation from the reference mean (the mean is
      kept);
    * ``category_surge``: share (a fraction, 0.2 = 20 points) added to ``category``, the
      other categories scaled down proportionally; a category the feature does not have
      yet appears as a new one;
    * ``missing_surge``: the new missing rate.

    Numeric values are clipped to the feature's bounds after the change, so a shift that
    pushes values against a bound moves the mean by less than asked.
    """

    feature: str
    kind: DriftKind
    start: int
    magnitude: float
    category: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(f"drift kind must be one of {DRIFT_KINDS}, got {self.kind!r}")
        if self.start < 0:
            raise ValueError(f"drift start must be >= 0, got {self.start}")
        if not math.isfinite(self.magnitude):
            raise ValueError("drift magnitude must be finite")
        if (self.kind == "category_surge") != (self.category is not None):
            raise ValueError("category is required for category_surge and only there")
        if self.kind == "scale" and self.magnitude < 0:
            raise ValueError("a scale drift needs magnitude >= 0")
        if self.kind == "missing_surge":
            _check_rate(self.feature, "missing_surge magnitude", self.magnitude)


@dataclass(frozen=True)
class ConceptDrift:
    """A change of the world, not of the inputs, from event index ``start`` on.

    For events whose ``feature`` is ``category`` (a part of the input space), the outcome
    stops following the model's prediction: the label is 1 with probability
    ``positive_rate``, whatever the prediction. Inputs and predictions stay exactly what
    they are without it, so input statistics cannot see it; only labels can.
    """

    start: int
    feature: str
    category: str
    positive_rate: float

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ValueError(f"concept drift start must be >= 0, got {self.start}")
        _check_rate(self.feature, "positive_rate", self.positive_rate)


@dataclass(frozen=True)
class Scenario:
    """A reproducible stream of prediction events of one model version.

    Event ``i`` has event time ``start_time + i / rate`` (epoch seconds, rounded to the
    millisecond) and id ``f"{model_id}-{seed}-{i}"``.
    """

    model_id: str
    model_version: str
    events: int
    seed: int
    start_time: float
    rate: float
    drifts: tuple[Drift, ...] = ()
    prediction: bool = True
    model: SyntheticModel = CREDIT_SCORING_MODEL
    timestamp_format: TimestampFormat = "rfc3339"
    labels: bool = False
    """Also emit a ``label`` (0/1, drawn from the model's own probability)."""
    label_delay: tuple[float, float] | None = None
    """With ``labels``: ``(min, max)`` seconds of event time; each label is sent as a
    feedback event (no ``features``, no ``prediction``) a uniform delay in that range after
    its prediction, instead of inline (see :func:`stream_lines`)."""
    concept_drifts: tuple[ConceptDrift, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "drifts", tuple(self.drifts))
        object.__setattr__(self, "concept_drifts", tuple(self.concept_drifts))
        if self.events < 0:
            raise ValueError("events must be >= 0")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if not math.isfinite(self.start_time):
            raise ValueError("start_time must be finite")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("rate must be a positive number of events per second")
        if self.timestamp_format not in TIMESTAMP_FORMATS:
            raise ValueError(f"timestamp_format must be one of {TIMESTAMP_FORMATS}")
        for drift in self.drifts:
            _check_drift(self.model, drift)
        for concept in self.concept_drifts:
            _check_concept_drift(self.model, concept)
        if self.label_delay is not None:
            low, high = self.label_delay
            if not (self.labels and math.isfinite(high) and 0 <= low <= high):
                raise ValueError(
                    "label_delay needs labels=True and 0 <= min <= max seconds (finite), "
                    f"got {self.label_delay!r}"
                )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.feature_names

    @property
    def inline_labels(self) -> bool:
        """Whether the label travels inside the prediction event."""
        return self.labels and self.label_delay is None

    def without_drift(self) -> Scenario:
        """The same scenario with no drift, of the inputs or of the world (the baseline a
        drift is compared with)."""
        return replace(self, drifts=(), concept_drifts=())

    def event_id(self, index: int) -> str:
        return f"{self.model_id}-{self.seed}-{index}"

    def event_time(self, index: int) -> float:
        """Event time of event ``index``, epoch seconds (millisecond resolution)."""
        return float(_epoch_ms(self, np.array([index]))[0]) / 1000.0


def credit_scoring_scenario(
    *,
    events: int = 100_000,
    drifts: Sequence[Drift] | None = None,
    seed: int = 0,
    model_id: str = "credit-scoring",
    model_version: str = "2024.06.1",
    start_time: float = 1_704_067_200.0,
    rate: float = 20.0,
    prediction: bool = True,
    labels: bool = False,
    timestamp_format: TimestampFormat = "rfc3339",
    label_delay: tuple[float, float] | None = None,
    concept_drifts: Sequence[ConceptDrift] = (),
) -> Scenario:
    """Loan applications scored by :data:`CREDIT_SCORING_MODEL`, from 2024-01-01T00:00Z.

    ``drifts=None`` injects a typical incident at ``events // 2``: ``amount`` shifts up by one
    reference standard deviation and the share of ``country`` ``"BR"`` grows by 20 points.
    Pass ``drifts=()`` for a stream without drift.
    """
    if drifts is None:
        half = events // 2
        drifts = (
            Drift("amount", "mean_shift", start=half, magnitude=1.0),
            Drift("country", "category_surge", start=half, magnitude=0.2, category="BR"),
        )
    return Scenario(
        model_id=model_id,
        model_version=model_version,
        events=events,
        seed=seed,
        start_time=start_time,
        rate=rate,
        drifts=tuple(drifts),
        prediction=prediction,
        model=CREDIT_SCORING_MODEL,
        timestamp_format=timestamp_format,
        labels=labels,
        label_delay=label_delay,
        concept_drifts=tuple(concept_drifts),
    )


def wide_numeric_model(features: int = 20) -> SyntheticModel:
    """``features`` normal features ``f00``, ``f01``, ... with varied means and scales."""
    if features < 1:
        raise ValueError("features must be >= 1")
    width = max(2, len(str(features - 1)))
    specs = tuple(
        NumericFeature(
            f"f{k:0{width}d}",
            "normal",
            (float((k * 7) % 11 - 5) * 10.0, 0.5 + float((k * 3) % 7)),
            decimals=4,
            weight=(0.5 if k % 2 == 0 else -0.5) / math.sqrt(features),
        )
        for k in range(features)
    )
    return SyntheticModel(features=specs, intercept=-1.0, noise_std=0.5)


def wide_numeric_scenario(
    *,
    features: int = 20,
    events: int = 100_000,
    seed: int = 0,
    drifts: Sequence[Drift] = (),
    prediction: bool = True,
    timestamp_format: TimestampFormat = "epoch_ms",
    model_id: str = "wide-numeric",
    model_version: str = "1",
    start_time: float = 1_704_067_200.0,
    rate: float = 1000.0,
) -> Scenario:
    """A many-feature numeric model for benchmarks (see :func:`wide_numeric_model`)."""
    return Scenario(
        model_id=model_id,
        model_version=model_version,
        events=events,
        seed=seed,
        start_time=start_time,
        rate=rate,
        drifts=tuple(drifts),
        prediction=prediction,
        model=wide_numeric_model(features),
        timestamp_format=timestamp_format,
    )


# --------------------------------------------------------------------------- public output


def event_columns(
    scenario: Scenario, start: int = 0, stop: int | None = None
) -> dict[str, list[Scalar]]:
    """Feature values of events ``[start, stop)`` as columns (``None`` = missing).

    With ``scenario.prediction`` the prediction is the column ``__prediction__``; with
    ``scenario.labels`` the label is ``__label__``.
    """
    start, stop = _bounds(scenario.events, start, stop)
    plan = _plan(scenario)
    columns: dict[str, list[Scalar]] = {name: [] for name in _column_names(scenario)}
    for block in _blocks(scenario.seed, _TRAFFIC_STREAM, plan, start, stop):
        for name, values in _block_columns(scenario, block).items():
            columns[name].extend(values)
    return columns


def event_lines(scenario: Scenario, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """Prediction events ``[start, stop)`` in order, one JSON object each (no newline)."""
    start, stop = _bounds(scenario.events, start, stop)
    plan = _plan(scenario)
    for block in _blocks(scenario.seed, _TRAFFIC_STREAM, plan, start, stop):
        yield from _block_lines(scenario, block)


@dataclass(frozen=True, slots=True)
class StreamLine:
    """One line of :func:`stream_lines`."""

    time_ms: int
    """Event time, epoch milliseconds."""
    index: int
    """Index of the prediction (the one a feedback event labels)."""
    feedback: bool
    line: bytes


def stream_lines(scenario: Scenario, *, labels_until_ms: int | None = None) -> Iterator[StreamLine]:
    """Every event of ``scenario`` in event-time order: its predictions and, with a
    ``label_delay``, one feedback event per prediction (event id and model of the
    prediction, ``timestamp`` = when the label became known, ``label``).

    Ties (same millisecond) go by prediction index, a feedback event before the prediction
    with the same index: a label never comes before its own prediction. The labels of the last
    predictions arrive after them, at the end; ``labels_until_ms`` drops the feedback
    events later than that (a stream that stops with its last prediction). Without a
    ``label_delay`` these are :func:`event_lines`.
    """
    plan = _plan(scenario)
    pending: list[tuple[int, int, bytes]] = []
    for block in _blocks(scenario.seed, _TRAFFIC_STREAM, plan, 0, scenario.events):
        lines = _block_lines(scenario, block)
        indices = np.arange(block.lo, block.lo + len(lines), dtype=np.int64)
        times = _epoch_ms(scenario, indices).tolist()
        if block.label_delay_ms is not None and block.label is not None:
            label_times = [t + d for t, d in zip(times, block.label_delay_ms, strict=True)]
            feedback = _feedback_lines(scenario, block, label_times)
            for index, label_time, line in zip(
                indices.tolist(), label_times, feedback, strict=True
            ):
                if labels_until_ms is None or label_time <= labels_until_ms:
                    heapq.heappush(pending, (label_time, index, line))
        for index, time_ms, line in zip(indices.tolist(), times, lines, strict=True):
            while pending and pending[0][:2] < (time_ms, index):
                due, labelled, text = heapq.heappop(pending)
                yield StreamLine(due, labelled, True, text)
            yield StreamLine(time_ms, index, False, line)
    while pending:
        due, labelled, text = heapq.heappop(pending)
        yield StreamLine(due, labelled, True, text)


def _envelope_pieces(scenario: Scenario) -> tuple[bytes, bytes]:
    """The serialised envelope around an event's index (``id_head``) and up to its
    timestamp (``middle``): ``id_head + index + middle + timestamp`` starts the event."""
    dumps = orjson.dumps
    id_head = b'{"event_id":' + dumps(f"{scenario.model_id}-{scenario.seed}-")[:-1]
    middle = (
        b'","model_id":'
        + dumps(scenario.model_id)
        + b',"model_version":'
        + dumps(scenario.model_version)
        + b',"timestamp":'
    )
    return id_head, middle


def _feedback_lines(scenario: Scenario, block: _Block, label_times: list[int]) -> list[bytes]:
    """The feedback events of a block's predictions (their labels at ``label_times``)."""
    assert block.label is not None
    id_head, middle = _envelope_pieces(scenario)
    stamps = _json_scalars(_format_times(scenario, np.asarray(label_times, dtype=np.int64)))
    labels = _json_scalars(block.label)
    return [
        id_head + str(block.lo + k).encode() + middle + stamp + b',"label":' + label + b"}"
        for k, (stamp, label) in enumerate(zip(stamps, labels, strict=True))
    ]


def write_events(scenario: Scenario, path: str | Path) -> int:
    """Write all events of ``scenario`` as JSONL to ``path`` (with a ``label_delay``, the
    merged stream of :func:`stream_lines`); return the number written."""
    plan = _plan(scenario)
    written = 0
    with open(path, "wb") as out:
        if scenario.label_delay is not None:
            for item in stream_lines(scenario):
                out.write(item.line + b"\n")
                written += 1
            return written
        for block in _blocks(scenario.seed, _TRAFFIC_STREAM, plan, 0, scenario.events):
            lines = _block_lines(scenario, block)
            if lines:
                out.write(b"\n".join(lines))
                out.write(b"\n")
            written += len(lines)
    return written


def reference_rows(
    scenario: Scenario,
    n: int,
    *,
    prediction_column: str | None = PREDICTION_FEATURE,
    label_column: str | None = LABEL_FEATURE,
) -> dict[str, list[Scalar]]:
    """``n`` rows of training data for ``scenario``'s model, as columns (``None`` = missing).

    Drawn from the same generator without any drift, from random streams of their own
    (independent of the traffic; a longer reference starts with the rows of a shorter one).
    The columns are the model's features, then the prediction as ``prediction_column``
    (when ``scenario.prediction``; ``None`` leaves it out) and the label as ``label_column``
    (when ``scenario.labels``).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    baseline = scenario.without_drift()
    plan = _plan(baseline)
    rename = {PREDICTION_FEATURE: prediction_column, LABEL_FEATURE: label_column}
    columns: dict[str, list[Scalar]] = {}
    for name in _column_names(baseline):
        target = rename.get(name, name)
        if target in columns:
            raise ValueError(f"reference column {target!r} would appear twice")
        if target is not None:
            columns[target] = []
    for block in _blocks(baseline.seed, _REFERENCE_STREAM, plan, 0, n):
        for name, values in _block_columns(baseline, block).items():
            target = rename.get(name, name)
            if target is not None:
                columns[target].extend(values)
    return columns


def write_reference_csv(
    scenario: Scenario,
    n: int,
    path: str | Path,
    *,
    prediction_column: str | None = PREDICTION_FEATURE,
    label_column: str | None = LABEL_FEATURE,
) -> None:
    """Write :func:`reference_rows` as CSV with a header row.

    Missing values are empty cells, booleans ``true`` / ``false``.
    """
    columns = reference_rows(
        scenario, n, prediction_column=prediction_column, label_column=label_column
    )
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow([_csv_cell(value) for value in row])


def write_reference_jsonl(
    scenario: Scenario,
    n: int,
    path: str | Path,
    *,
    prediction_column: str | None = PREDICTION_FEATURE,
    label_column: str | None = LABEL_FEATURE,
) -> None:
    """Write :func:`reference_rows` as JSONL: one flat object per row, ``null`` if missing."""
    columns = reference_rows(
        scenario, n, prediction_column=prediction_column, label_column=label_column
    )
    names = list(columns)
    with open(path, "wb") as out:
        for row in zip(*columns.values(), strict=True):
            out.write(orjson.dumps(dict(zip(names, row, strict=True))))
            out.write(b"\n")


@lru_cache(maxsize=1024)
def reference_moments(spec: NumericFeature) -> tuple[float, float]:
    """Reference mean and standard deviation of ``spec`` (after clipping and rounding).

    Estimated from :data:`MOMENT_SAMPLES` draws with a fixed seed, so the same for every
    scenario seed; missing values do not enter.
    """
    values = _finish(
        spec,
        _draw(spec, np.random.default_rng([_MOMENTS_SEED, 0]), MOMENT_SAMPLES),
        np.random.default_rng([_MOMENTS_SEED, 1]),
    )
    std = float(values.std())
    return float(values.mean()), std if std > 0 else 1.0


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class _FeaturePlan:
    spec: FeatureSpec
    slot: int
    drifts: tuple[Drift, ...]
    """This feature's drifts, by start (stable)."""
    categories: tuple[str, ...] = ()
    """Categorical and boolean: reference categories, then categories new in a surge."""
    shares: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    moments: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class _Plan:
    features: tuple[_FeaturePlan, ...]
    model: SyntheticModel
    prediction: bool
    labels: bool
    concept_drifts: tuple[tuple[ConceptDrift, int], ...] = ()
    """Each concept drift with the slot of its feature."""
    label_delay: tuple[float, float] | None = None


@dataclass
class _Block:
    lo: int
    """Index of the first event of the window."""
    columns: dict[str, list[Scalar]] = field(default_factory=dict)
    prediction: list[float] | None = None
    label: list[int] | None = None
    label_delay_ms: list[int] | None = None
    """With a label delay: each label's delay after its prediction, milliseconds."""

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


@lru_cache(maxsize=64)
def _plan(scenario: Scenario) -> _Plan:
    features = []
    for slot, spec in enumerate(scenario.model.features):
        drifts = tuple(
            sorted((d for d in scenario.drifts if d.feature == spec.name), key=lambda d: d.start)
        )
        if isinstance(spec, NumericFeature):
            features.append(_FeaturePlan(spec, slot, drifts, moments=reference_moments(spec)))
            continue
        categories: tuple[str, ...]
        shares: tuple[float, ...]
        weights: tuple[float, ...]
        if isinstance(spec, BooleanFeature):
            categories, shares = ("true", "false"), (spec.true_share, 1.0 - spec.true_share)
            weights = (spec.weight, 0.0)
        else:
            categories, shares = spec.categories, spec.shares
            weights = spec.weights or (0.0,) * len(categories)
        new = tuple(
            dict.fromkeys(
                d.category
                for d in drifts
                if d.category is not None and d.category not in categories
            )
        )
        features.append(
            _FeaturePlan(
                spec,
                slot,
                drifts,
                categories=categories + new,
                shares=shares + (0.0,) * len(new),
                weights=weights + (0.0,) * len(new),
            )
        )
    slots = {spec.name: slot for slot, spec in enumerate(scenario.model.features)}
    return _Plan(
        tuple(features),
        scenario.model,
        scenario.prediction,
        scenario.labels,
        tuple((c, slots[c.feature]) for c in scenario.concept_drifts),
        scenario.label_delay,
    )


def _blocks(seed: int, stream: int, plan: _Plan, start: int, stop: int) -> Iterator[_Block]:
    """Generate events ``[start, stop)`` block by block (whole blocks drawn, then cut)."""
    if stop <= start:
        return
    for block in range(start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE + 1):
        lo = block * BLOCK_SIZE
        a, b = max(start - lo, 0), min(stop - lo, BLOCK_SIZE)
        yield _generate_block(seed, stream, plan, block, a, b)


def _generate_block(seed: int, stream: int, plan: _Plan, block: int, a: int, b: int) -> _Block:
    """Draw a whole block for every feature and the score, keep rows ``[a, b)`` of it."""
    lo = block * BLOCK_SIZE
    n = BLOCK_SIZE
    logit = np.full(n, plan.model.intercept, dtype=np.float64)
    out = _Block(lo=lo + a)
    segments: dict[int, tuple[IntArray, BoolArray | None]] = {}
    """Category codes and missing mask of the features concept drifts segment on."""
    for fp in plan.features:

        def rng(purpose: int, slot: int = fp.slot) -> np.random.Generator:
            return np.random.default_rng([seed, stream, slot, purpose, block])

        missing = _missing_mask(fp, rng, lo, n)
        if isinstance(fp.spec, NumericFeature):
            values = _numeric_values(fp, fp.spec, rng, lo, n)
            mean, std = fp.moments
            contribution = (
                np.clip((values - mean) / std, -_Z_LIMIT, _Z_LIMIT) * fp.spec.weight
                if fp.spec.weight
                else None
            )
            column = _numeric_list(values[a:b], fp.spec.decimals, _cut(missing, a, b))
        else:
            codes = _category_codes(fp, rng(_VALUES).random(n), lo)
            segments[fp.slot] = (codes, missing)
            weights = np.asarray(fp.weights, dtype=np.float64)
            contribution = weights[codes] if weights.any() else None
            column = _category_list(fp, codes[a:b], _cut(missing, a, b))
        out.columns[fp.spec.name] = column
        if contribution is not None:
            logit += contribution if missing is None else np.where(missing, 0.0, contribution)
    if not (plan.prediction or plan.labels):
        return out
    score_slot = len(plan.features)
    if plan.model.noise_std > 0:
        noise = np.random.default_rng([seed, stream, score_slot, _NOISE, block])
        logit += noise.normal(0.0, plan.model.noise_std, n)
    probability = 1.0 / (1.0 + np.exp(-logit))
    if plan.prediction:
        out.prediction = np.round(probability[a:b], 4).tolist()
    if plan.labels:
        truth = _true_probability(plan, probability, segments, lo)
        draws = np.random.default_rng([seed, stream, score_slot, _LABELS, block]).random(n)
        out.label = (draws < truth)[a:b].astype(np.int64).tolist()
        if plan.label_delay is not None:
            low, high = plan.label_delay
            delays = np.random.default_rng([seed, stream, score_slot, _DELAYS, block])
            seconds = delays.uniform(low, high, n)
            out.label_delay_ms = np.rint(seconds[a:b] * 1000.0).astype(np.int64).tolist()
    return out


def _true_probability(
    plan: _Plan,
    probability: FloatArray,
    segments: dict[int, tuple[IntArray, BoolArray | None]],
    lo: int,
) -> FloatArray:
    """The probability of a positive outcome: the model's, except where a concept drift
    has changed the world (in start order, a later one wins where they overlap)."""
    if not plan.concept_drifts:
        return probability
    truth = probability.copy()
    n = probability.shape[0]
    for concept, slot in sorted(plan.concept_drifts, key=lambda item: item[0].start):
        begin = min(max(concept.start - lo, 0), n)
        if begin >= n:
            continue
        codes, missing = segments[slot]
        fp = plan.features[slot]
        inside = codes[begin:] == fp.categories.index(concept.category)
        if missing is not None:
            inside &= ~missing[begin:]
        truth[begin:][inside] = concept.positive_rate
    return truth


def _numeric_values(
    fp: _FeaturePlan,
    spec: NumericFeature,
    rng: Callable[[int], np.random.Generator],
    lo: int,
    n: int,
) -> FloatArray:
    values = _draw(spec, rng(_VALUES), n)
    for drift in fp.drifts:
        begin = min(max(drift.start - lo, 0), n)
        values[begin:] = _transform(values[begin:], drift, fp.moments)
    return _finish(spec, values, rng(_ROUNDING) if spec.decimals == 0 else None)


def _draw(spec: NumericFeature, rng: np.random.Generator, n: int) -> FloatArray:
    p = spec.params
    if spec.distribution == "normal":
        return rng.normal(p[0], p[1], n)
    if spec.distribution == "lognormal":
        return rng.lognormal(p[0], p[1], n)
    if spec.distribution == "poisson":
        return rng.poisson(p[0], n).astype(np.float64)
    return rng.beta(p[0], p[1], n)


def _transform(values: FloatArray, drift: Drift, moments: tuple[float, float]) -> FloatArray:
    mean, std = moments
    if drift.kind == "mean_shift":
        return values + drift.magnitude * std
    if drift.kind == "scale":
        return mean + drift.magnitude * (values - mean)
    return values


def _finish(
    spec: NumericFeature, values: FloatArray, rounding: np.random.Generator | None
) -> FloatArray:
    """Clip to the bounds and round to the feature's resolution."""
    bounded = spec.lower is not None or spec.upper is not None
    if bounded:
        values = np.clip(values, spec.lower, spec.upper)
    if spec.decimals == 0:
        jitter = rounding.random(values.shape[0]) if rounding is not None else 0.5
        values = np.floor(values + jitter)
        if bounded:
            values = np.clip(values, spec.lower, spec.upper)
    elif spec.decimals is not None:
        values = np.round(values, spec.decimals)
    return values


def _missing_mask(
    fp: _FeaturePlan, rng: Callable[[int], np.random.Generator], lo: int, n: int
) -> BoolArray | None:
    surges = [d for d in fp.drifts if d.kind == "missing_surge"]
    if fp.spec.missing_rate == 0.0 and not surges:
        return None
    rate = np.full(n, fp.spec.missing_rate, dtype=np.float64)
    for drift in surges:
        rate[min(max(drift.start - lo, 0), n) :] = drift.magnitude
    draws: FloatArray = rng(_MISSING).random(n)
    return draws < rate


def _category_codes(fp: _FeaturePlan, uniform: FloatArray, lo: int) -> IntArray:
    surges = [d for d in fp.drifts if d.kind == "category_surge"]
    n = uniform.shape[0]
    edges = [0, *(min(max(d.start - lo, 0), n) for d in surges), n]
    codes = np.empty(n, dtype=np.intp)
    last = len(fp.categories) - 1
    for k in range(len(surges) + 1):
        begin, end = edges[k], edges[k + 1]
        if end <= begin:
            continue
        shares = np.asarray(fp.shares, dtype=np.float64)
        for drift in surges[:k]:
            shares = _surged(shares, fp.categories.index(str(drift.category)), drift.magnitude)
        cumulative = np.cumsum(shares)
        found = np.searchsorted(cumulative, uniform[begin:end], side="right")
        codes[begin:end] = np.minimum(found, last)
    return codes


def _surged(shares: FloatArray, index: int, magnitude: float) -> FloatArray:
    """Add ``magnitude`` to one share (clamped to [0, 1]) and rescale the others."""
    old = float(shares[index])
    new = min(max(old + magnitude, 0.0), 1.0)
    rest = 1.0 - old
    if rest > 0:
        out = shares * ((1.0 - new) / rest)
    else:
        out = np.full_like(shares, (1.0 - new) / max(shares.shape[0] - 1, 1))
    out[index] = new
    return out


def _numeric_list(
    values: FloatArray, decimals: int | None, missing: BoolArray | None
) -> list[Scalar]:
    column: list[Scalar] = values.astype(np.int64).tolist() if decimals == 0 else values.tolist()
    return _blank(column, missing)


def _category_list(fp: _FeaturePlan, codes: IntArray, missing: BoolArray | None) -> list[Scalar]:
    if isinstance(fp.spec, BooleanFeature):
        column: list[Scalar] = (codes == 0).tolist()
    else:
        column = np.asarray(fp.categories, dtype=object)[codes].tolist()
    return _blank(column, missing)


def _blank(column: list[Scalar], missing: BoolArray | None) -> list[Scalar]:
    if missing is not None:
        for index in np.flatnonzero(missing).tolist():
            column[index] = None
    return column


def _cut(mask: BoolArray | None, a: int, b: int) -> BoolArray | None:
    return None if mask is None else mask[a:b]


# --------------------------------------------------------------------------- serialisation


def _column_names(scenario: Scenario) -> list[str]:
    names = list(scenario.feature_names)
    if scenario.prediction:
        names.append(PREDICTION_FEATURE)
    if scenario.labels:
        names.append(LABEL_FEATURE)
    return names


def _block_columns(scenario: Scenario, block: _Block) -> dict[str, list[Scalar]]:
    columns = dict(block.columns)
    if scenario.prediction and block.prediction is not None:
        columns[PREDICTION_FEATURE] = list(block.prediction)
    if scenario.labels and block.label is not None:
        columns[LABEL_FEATURE] = list(block.label)
    return columns


def _block_lines(scenario: Scenario, block: _Block) -> list[bytes]:
    """Serialise a block of events.

    The envelope is assembled from pre-serialised pieces (scalar columns are serialised
    once per block) and ``features`` with one ``orjson.dumps`` per event; the bytes equal
    ``orjson.dumps`` of the whole event object.
    """
    n = len(block)
    dumps = orjson.dumps
    indices = np.arange(block.lo, block.lo + n, dtype=np.int64)
    id_head, middle = _envelope_pieces(scenario)
    heads = [
        id_head + str(index).encode() + middle + timestamp + b',"features":'
        for index, timestamp in zip(
            indices.tolist(), _json_scalars(_timestamps(scenario, indices)), strict=True
        )
    ]
    tails = [b"}"] * n
    if scenario.inline_labels and block.label is not None:
        labels = _json_scalars(block.label)
        tails = [b',"label":' + v + t for v, t in zip(labels, tails, strict=True)]
    if scenario.prediction and block.prediction is not None:
        predictions = _json_scalars(block.prediction)
        tails = [b',"prediction":' + v + t for v, t in zip(predictions, tails, strict=True)]
    names = list(block.columns)
    rows = zip(*block.columns.values(), strict=True)
    return [
        head + dumps(dict(zip(names, row, strict=True))) + tail
        for head, row, tail in zip(heads, rows, tails, strict=True)
    ]


def _json_scalars(values: Sequence[Any]) -> list[bytes]:
    """JSON text of each value of a list of numbers or comma-free strings."""
    if not values:
        return []
    return orjson.dumps(values)[1:-1].split(b",")


def _epoch_ms(scenario: Scenario, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    exact = scenario.start_time * 1000.0 + indices * (1000.0 / scenario.rate)
    ms: npt.NDArray[np.int64] = np.rint(exact).astype(np.int64)
    return ms


def _timestamps(scenario: Scenario, indices: npt.NDArray[np.int64]) -> list[Any]:
    return _format_times(scenario, _epoch_ms(scenario, indices))


def _format_times(scenario: Scenario, ms: npt.NDArray[np.int64]) -> list[Any]:
    """Epoch milliseconds in the scenario's timestamp format."""
    stamps: list[Any]
    if scenario.timestamp_format == "epoch_ms":
        stamps = ms.tolist()
    elif scenario.timestamp_format == "epoch_s":
        stamps = (ms / 1000.0).tolist()
    else:
        text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC")
        stamps = text.tolist()
    return stamps


def _csv_cell(value: Scalar) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- validation


def _bounds(events: int, start: int, stop: int | None) -> tuple[int, int]:
    stop = events if stop is None else stop
    if not 0 <= start <= stop <= events:
        raise ValueError(f"need 0 <= start <= stop <= {events}, got start={start} stop={stop}")
    return start, stop


def _check_drift(model: SyntheticModel, drift: Drift) -> None:
    try:
        spec = model.feature(drift.feature)
    except KeyError:
        raise ValueError(
            f"drift on unknown feature {drift.feature!r}; features: {list(model.feature_names)}"
        ) from None
    numeric = isinstance(spec, NumericFeature)
    if drift.kind in ("mean_shift", "scale") and not numeric:
        raise ValueError(f"{drift.kind} needs a numeric feature; {drift.feature!r} is not")
    if drift.kind == "category_surge":
        if numeric:
            raise ValueError(f"category_surge needs a categorical or boolean feature: {spec.name}")
        if isinstance(spec, BooleanFeature):
            if drift.category not in ("true", "false"):
                raise ValueError(f"{spec.name}: boolean categories are 'true' and 'false'")
            share = spec.true_share if drift.category == "true" else 1.0 - spec.true_share
        elif isinstance(spec, CategoricalFeature):
            shares = dict(zip(spec.categories, spec.shares, strict=True))
            share = shares.get(str(drift.category), 0.0)
        if not 0.0 <= share + drift.magnitude <= 1.0:
            raise ValueError(
                f"{spec.name}: share of {drift.category!r} would become "
                f"{share + drift.magnitude:.3f}, outside [0, 1]"
            )


def _check_concept_drift(model: SyntheticModel, concept: ConceptDrift) -> None:
    try:
        spec = model.feature(concept.feature)
    except KeyError:
        raise ValueError(
            f"concept drift on unknown feature {concept.feature!r}; "
            f"features: {list(model.feature_names)}"
        ) from None
    if isinstance(spec, NumericFeature):
        raise ValueError(
            f"a concept drift segments on a categorical or boolean feature: {spec.name}"
        )
    categories = spec.categories if isinstance(spec, CategoricalFeature) else ("true", "false")
    if concept.category not in categories:
        raise ValueError(
            f"{spec.name}: concept drift category {concept.category!r} is not one of {categories}"
        )
