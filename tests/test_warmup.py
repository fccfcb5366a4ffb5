"""Warm-up in bounded form: profiles close to (or, for short warm-ups, equal to) those built
from every value, independent of batch boundaries, restorable mid-warm-up, bounded state."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import orjson
import pytest

from driftline.config import parse_settings
from driftline.events import Scalar
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import (
    FeatureKind,
    ProfileError,
    ProfileSource,
    ReferenceProfile,
    build_profile,
)
from driftline.warmup import WarmupSketch
from tests.stream_support import event_stream, reference_columns


def _feature_dicts(profile: ReferenceProfile) -> dict[str, object]:
    return profile.to_dict()["features"]  # type: ignore[no-any-return]


def _sketch(columns: dict[str, list[Scalar]], cuts: list[int], **kw: int) -> WarmupSketch:
    sketch = WarmupSketch(**kw)
    bounds = [0, *cuts, len(next(iter(columns.values())))]
    for a, b in itertools.pairwise(bounds):
        sketch.add({k: v[a:b] for k, v in columns.items()}, b - a)
    return sketch


def _learned(sketch: WarmupSketch, top_k: int = 20) -> ReferenceProfile:
    return sketch.profile(model_id="m", model_version="1", top_k=top_k)


def _exact(columns: dict[str, list[Scalar]], top_k: int = 20) -> ReferenceProfile:
    source = ProfileSource(kind="file", sha256="0" * 64)
    return build_profile(columns, model_id="m", model_version="1", source=source, top_k=top_k)


def test_a_short_warmup_is_profiled_exactly_as_from_a_file() -> None:
    columns = reference_columns(900)
    columns["mixed"] = [1, 2.5, None, "x", *([3] * 896)]  # numbers, then a string
    columns["empty"] = [None] * 900
    learned = _learned(_sketch(columns, [1, 17, 400]))
    assert _feature_dicts(learned) == _feature_dicts(_exact(columns))
    assert learned.features["mixed"].kind is FeatureKind.CATEGORICAL


def test_a_long_warmup_is_close_to_the_exact_profile() -> None:
    columns = reference_columns(10_000)
    learned, exact = _learned(_sketch(columns, [5_000])), _exact(columns)
    for name, feature in exact.features.items():
        got = learned.features[name]
        assert (got.kind, got.count, got.missing_count) == (
            feature.kind,
            feature.count,
            feature.missing_count,
        )
        if feature.numeric is None:
            assert got.categories == feature.categories  # exact under the category cap
            continue
        assert got.numeric is not None
        num, ref = got.numeric, feature.numeric
        assert (num.minimum, num.maximum) == (ref.minimum, ref.maximum)
        assert num.mean == pytest.approx(ref.mean, rel=1e-12)
        assert num.std == pytest.approx(ref.std, rel=1e-9)
        assert sum(num.bins.counts) == sum(num.fine_bins.counts) == got.count
        # Edges from the first 1,000 values: each decile bin of a continuous feature still
        # holds about 10% (discrete features have merged edges as in the exact profile).
        if len(ref.bins.edges) == 9:
            shares = np.array(num.bins.counts) / got.count
            assert np.abs(shares - 0.1).max() < 0.03


@pytest.mark.parametrize("sizes", [[1], [7, 993], [1_000, 1, 2_999], [333] * 12])
def test_the_learned_profile_does_not_depend_on_batch_boundaries(sizes: list[int]) -> None:
    columns = reference_columns(4_000)
    columns["mixed"] = [*range(1_500), "late string", *([None] * 2_499)]
    columns["many"] = [f"c{i % 1_300}" for i in range(4_000)]  # beyond the category cap
    cuts = list(np.cumsum(sizes * 4_000)[:-1])
    cuts = [int(c) for c in cuts if c < 4_000]
    one = _learned(_sketch(columns, []))
    assert _learned(_sketch(columns, cuts)).to_dict() == one.to_dict()
    assert one.features["many"].categories is not None
    assert one.features["many"].categories.distinct_count == 1_000
    assert one.features["many"].categories.other_count == 4_000 - sum(
        one.features["many"].categories.categories.values()
    )


def test_warmup_through_the_pipeline_does_not_depend_on_batch_boundaries() -> None:
    settings = parse_settings({"warmup_events": 3_000})
    events = event_stream(3_500)
    profiles = []
    for batch in (1, 250, 999, 3_500):
        pipeline = Pipeline(build_plan(settings, {}))
        for i in range(0, len(events), batch):
            pipeline.process(events[i : i + batch])
        profile = pipeline.monitors()[("m", "1")].profile
        assert profile is not None
        profiles.append(profile.to_dict())
    assert all(p == profiles[0] for p in profiles)


@pytest.mark.parametrize("cut", [10, 999, 1_001, 2_500])
def test_state_round_trip_mid_warmup_continues_exactly(cut: int) -> None:
    columns = reference_columns(3_000)
    columns["mixed"] = [*range(2_000), "s", *([1.5] * 999)]
    whole = _learned(_sketch(columns, []))
    first = _sketch({k: v[:cut] for k, v in columns.items()}, [])
    state = orjson.loads(orjson.dumps(first.to_state()))
    restored = WarmupSketch.from_state(state, rows=cut)
    restored.add({k: v[cut:] for k, v in columns.items()}, 3_000 - cut)
    assert _learned(restored).to_dict() == whole.to_dict()


def test_old_raw_warmup_state_is_summarised_on_restore() -> None:
    columns = reference_columns(1_200)
    legacy = {k: v[:700] for k, v in columns.items()}  # format 1: the raw columns
    restored = WarmupSketch.from_state(orjson.loads(orjson.dumps(legacy)), rows=700)
    restored.add({k: v[700:] for k, v in columns.items()}, 500)
    assert _learned(restored).to_dict() == _learned(_sketch(columns, [])).to_dict()


def test_numbers_that_cannot_be_summarised_fail_like_a_file_profile() -> None:
    columns: dict[str, list[Scalar]] = {"big": [1, 2**1100, 3]}
    with pytest.raises(ProfileError, match="too large for a float"):
        _learned(_sketch(columns, [1]))
    with pytest.raises(ProfileError, match="too large for a float"):
        _exact(columns)


def _wide_state(warmup_events: int, features: int = 300) -> tuple[bytes, int]:
    settings = parse_settings({"warmup_events": warmup_events})
    pipeline = Pipeline(build_plan(settings, {}))
    rng = np.random.default_rng(0)
    events = []
    for i in range(warmup_events // 2):
        values = rng.normal(100.0, 15.0, features).round(6).tolist()
        feats = {f"f{j:03d}": v for j, v in enumerate(values)}
        events.append(
            orjson.dumps(
                {
                    "event_id": str(i),
                    "model_id": "wide",
                    "model_version": "1",
                    "timestamp": 1_700_000_000 + i,
                    "features": feats,
                }
            )
        )
    for i in range(0, len(events), 1_000):
        pipeline.process(events[i : i + 1_000])
    assert pipeline.monitors()[("wide", "1")].warming_up
    state = pipeline.version_state(("wide", "1"))
    return state, len(zlib.compress(state))


def test_warmup_state_is_bounded_independently_of_warmup_events() -> None:
    """300 numeric features halfway through a 10,000-event warm-up (before this change:
    6.3 MiB after zlib, growing with warmup_events)."""
    state, compressed = _wide_state(10_000)
    print(f"\n10,000-event warm-up, halfway: {len(state):,} bytes, {compressed:,} zlib")
    assert len(state) < 1_000_000 and compressed < 400_000
    longer, _ = _wide_state(40_000)
    assert abs(len(longer) - len(state)) < 0.1 * len(state)  # only wider counts


@pytest.mark.parametrize("huge", [1e200, -1e200, 1.7e308])
def test_a_huge_value_mid_warmup_restores(huge: float) -> None:
    """Sums of squares overflow to infinity; the state must still restore (JSON has no inf)."""
    plan = build_plan(parse_settings({"warmup_events": 3_000, "warmup_sample_values": 100}), {})
    events = [
        orjson.dumps(
            {
                "event_id": f"e{i}",
                "model_id": "m",
                "model_version": "1",
                "timestamp": 1_000 + i,
                "features": {"x": huge if i == 3 else float(i), "y": -huge if i == 150 else 1.0},
            }
        )
        for i in range(1_000)
    ]
    before = Pipeline(plan)
    before.process(events[:500])
    after = Pipeline(plan)
    after.restore(before.to_state())
    assert after.to_state() == before.to_state()
    key = ("m", "1")
    assert after.version_state(key) == before.version_state(key)
    later = [before.process(events[500:]), after.process(events[500:])]
    assert later[0].dead_letters == later[1].dead_letters
    assert before.to_state() == after.to_state()
