"""Reference profiles: inference, summaries, binning, JSON round trip, ids and validation."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.events import Scalar
from driftline.profile import (
    SCHEMA_VERSION,
    Binning,
    FeatureKind,
    ProfileError,
    ProfileSource,
    ReferenceProfile,
    build_profile,
    category_key,
    infer_kind,
    load_profile,
    save_profile,
)

SOURCE = ProfileSource(kind="file", sha256="ab" * 32, path="train.csv", format="csv")


def build(columns: dict[str, list[Scalar]], **kwargs: Any) -> ReferenceProfile:
    return build_profile(columns, model_id="fraud", model_version="3", source=SOURCE, **kwargs)


def sample_columns(n: int = 500, seed: int = 1) -> dict[str, list[Scalar]]:
    rng = np.random.default_rng(seed)
    amount: list[Scalar] = [float(v) for v in rng.lognormal(3, 1, n)]
    for i in range(0, n, 17):
        amount[i] = None
    return {
        "amount": amount,
        "visits": [int(v) for v in rng.poisson(2, n)],
        "country": [str(c) for c in rng.choice(["de", "fr", "us", "uk", "es"], n)],
        "is_new": [bool(v) for v in rng.integers(0, 2, n)],
    }


def bins_by_masks(x: np.ndarray, edges: tuple[float, ...]) -> list[int]:
    """Count per bin with explicit comparisons: bin i holds edges[i-1] <= x < edges[i]."""
    bounds = [-math.inf, *edges, math.inf]
    return [int(((x >= lo) & (x < hi)).sum()) for lo, hi in itertools.pairwise(bounds)]


# --------------------------------------------------------------------------- category_key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("red", "red"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (7, "7"),
        (-3, "-3"),
        (7.0, "7"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (1e300, str(int(1e300))),
        (0.1, "0.1"),
        (None, None),
    ],
)
def test_category_key(value: Scalar, key: str | None) -> None:
    assert category_key(value) == key


def test_category_key_agrees_for_int_and_integral_float() -> None:
    assert category_key(12) == category_key(12.0)
    assert category_key(1) != category_key(True)


# --------------------------------------------------------------------------- infer_kind


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1, 2.5, None], FeatureKind.NUMERIC),
        ([1, 2, 3], FeatureKind.NUMERIC),
        ([True, False, None], FeatureKind.BOOLEAN),
        (["a", None], FeatureKind.CATEGORICAL),
        ([1, "1"], FeatureKind.CATEGORICAL),
        ([True, 1], FeatureKind.CATEGORICAL),  # bool is not a number here
        ([None, None], FeatureKind.CATEGORICAL),
        ([], FeatureKind.CATEGORICAL),
    ],
)
def test_infer_kind(values: list[Scalar], kind: FeatureKind) -> None:
    assert infer_kind(values) is kind


# --------------------------------------------------------------------------- numeric


def test_numeric_summary_matches_numpy() -> None:
    cols = sample_columns()
    feature = build(cols).features["amount"]
    x = np.array([v for v in cols["amount"] if v is not None], dtype=float)
    assert feature.kind is FeatureKind.NUMERIC
    assert (feature.count, feature.missing_count) == (len(x), 500 - len(x))
    assert feature.missing_rate == pytest.approx((500 - len(x)) / 500)
    num = feature.numeric
    assert num is not None
    assert num.minimum == x.min() and num.maximum == x.max()
    assert num.mean == pytest.approx(x.sum() / len(x), rel=1e-12)
    assert num.std == pytest.approx(math.sqrt(((x - x.mean()) ** 2).mean()), rel=1e-12)
    assert len(num.quantiles) == 101
    for k in (0, 1, 25, 50, 99, 100):
        assert num.quantiles[k] == pytest.approx(np.percentile(x, k), rel=1e-12)


def test_decile_and_percentile_bins_agree_with_masks() -> None:
    cols = sample_columns()
    num = build(cols).features["amount"].numeric
    assert num is not None
    x = np.array([v for v in cols["amount"] if v is not None], dtype=float)
    assert len(num.bins.edges) == 9 and len(num.bins.counts) == 10
    assert num.bins.edges == tuple(num.quantiles[10:100:10])
    assert list(num.bins.counts) == bins_by_masks(x, num.bins.edges)
    assert len(num.fine_bins.edges) == 99
    assert list(num.fine_bins.counts) == bins_by_masks(x, num.fine_bins.edges)
    assert sum(num.bins.counts) == sum(num.fine_bins.counts) == len(x)


def test_discrete_numeric_data_has_unique_edges() -> None:
    # five distinct values: many quantiles coincide and the edges must collapse
    visits = [0] * 50 + [1] * 30 + [2] * 15 + [3] * 4 + [10]
    num = build({"visits": list(visits)}).features["visits"].numeric
    assert num is not None
    assert list(num.bins.edges) == sorted(set(num.bins.edges))
    x = np.array(visits, dtype=float)
    deciles = np.quantile(x, [k / 10 for k in range(1, 10)])
    assert list(num.bins.edges) == sorted(set(deciles.tolist()))
    assert len(num.bins.edges) < 9  # the 10th..50th percentiles are all 0
    assert list(num.bins.counts) == bins_by_masks(x, num.bins.edges)
    assert list(num.fine_bins.counts) == bins_by_masks(x, num.fine_bins.edges)
    # the lowest bin (below the smallest edge) is empty when that edge is the minimum
    assert num.bins.edges[0] == 0.0 and num.bins.counts[0] == 0


def test_constant_feature() -> None:
    num = build({"c": [4.0] * 10}).features["c"].numeric
    assert num is not None
    assert num.bins == Binning(edges=(4.0,), counts=(0, 10))
    assert num.std == 0.0 and num.quantiles == (4.0,) * 101


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(-5, 5), st.floats(-1e3, 1e3, allow_nan=False)),
        min_size=1,
        max_size=200,
    )
)
def test_bins_agree_with_masks_for_any_data(values: list[int | float]) -> None:
    num = build({"x": list(values)}).features["x"].numeric
    assert num is not None
    x = np.array(values, dtype=float)
    for binning in (num.bins, num.fine_bins):
        assert all(a < b for a, b in zip(binning.edges, binning.edges[1:], strict=False))
        assert list(binning.counts) == bins_by_masks(x, binning.edges)


def test_all_missing_features_are_kept() -> None:
    profile = build({"a": [1, 2], "gone": [None, None]}, kinds={"a": FeatureKind.NUMERIC})
    gone = profile.features["gone"]
    assert (gone.kind, gone.count, gone.missing_count) == (FeatureKind.CATEGORICAL, 0, 2)
    assert gone.categories is not None and gone.categories.categories == {}
    as_numeric = build({"a": [1, 2], "gone": [None, None]}, kinds={"gone": FeatureKind.NUMERIC})
    assert as_numeric.features["gone"].numeric is None
    assert ReferenceProfile.from_json(as_numeric.to_json()) == as_numeric


def test_numeric_feature_with_a_string_is_an_error_naming_it() -> None:
    with pytest.raises(ProfileError, match=r"'amount'.*'oops'"):
        build({"amount": [1.0, "oops", 2.0]}, kinds={"amount": FeatureKind.NUMERIC})
    # the same data profiled as categories is fine
    profile = build({"amount": [1.0, "oops", 2.0]}, kinds={"amount": FeatureKind.CATEGORICAL})
    assert profile.features["amount"].categories is not None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_errors_naming_the_feature(bad: float) -> None:
    with pytest.raises(ProfileError, match=r"'score'.*non-finite"):
        build({"score": [1.0, bad]})


def test_boolean_feature_with_non_bool_is_an_error() -> None:
    with pytest.raises(ProfileError, match=r"'flag' is boolean.*'yes'"):
        build({"flag": [True, "yes"]}, kinds={"flag": FeatureKind.BOOLEAN})


def test_columns_of_different_length_and_unknown_kinds_are_errors() -> None:
    with pytest.raises(ProfileError, match="differ in length"):
        build({"a": [1, 2], "b": [1]})
    with pytest.raises(ProfileError, match=r"not in the data.*'typo'"):
        build({"a": [1, 2]}, kinds={"typo": FeatureKind.NUMERIC})
    with pytest.raises(ProfileError, match="no rows"):
        build({"a": []})


# --------------------------------------------------------------------------- categories


def test_top_k_and_other() -> None:
    values: list[Scalar] = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] * 1 + [None] * 2
    cats = build({"c": values}, top_k=2).features["c"].categories
    assert cats is not None
    # b and c tie at 3: the name breaks the tie
    assert list(cats.categories.items()) == [("a", 5), ("b", 3)]
    assert cats.other_count == 4
    assert cats.distinct_count == 4


def test_categories_use_category_keys() -> None:
    profile = build({"code": [7, 7.0, "7", 2.5, True]}, kinds={"code": FeatureKind.CATEGORICAL})
    cats = profile.features["code"].categories
    assert cats is not None
    assert cats.categories == {"7": 3, "2.5": 1, "true": 1}


def test_boolean_features_keep_both_categories() -> None:
    cats = build({"f": [True, True, None]}).features["f"].categories
    assert cats is not None
    assert list(cats.categories.items()) == [("true", 2), ("false", 0)]
    assert (cats.other_count, cats.distinct_count) == (0, 1)


def test_top_k_against_counter() -> None:
    rng = np.random.default_rng(5)
    values: list[Scalar] = [f"c{int(v)}" for v in rng.zipf(1.5, 2000) % 60]
    cats = build({"c": values}, top_k=20).features["c"].categories
    assert cats is not None
    counted = Counter(values)
    ranked = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(cats.categories.items()) == ranked[:20]
    assert cats.other_count == sum(n for _, n in ranked[20:])
    assert cats.distinct_count == len(counted)


# --------------------------------------------------------------------------- JSON


def test_json_round_trip_is_exact() -> None:
    profile = build(sample_columns())
    data = profile.to_json()
    again = ReferenceProfile.from_json(data)
    assert again == profile
    assert again.to_json() == data
    num, num2 = profile.features["amount"].numeric, again.features["amount"].numeric
    assert num is not None and num2 is not None
    assert all(a == b for a, b in zip(num.quantiles, num2.quantiles, strict=True))  # bit-exact


def test_json_layout() -> None:
    profile = build(sample_columns())
    d = orjson.loads(profile.to_json())
    assert d["schema_version"] == SCHEMA_VERSION
    assert d["profile_id"] == profile.profile_id
    assert list(d) == sorted(d)
    assert d["features"]["amount"]["bins"]["counts"] == list(
        profile.features["amount"].numeric.bins.counts  # type: ignore[union-attr]
    )
    assert d["source"] == {
        "kind": "file",
        "sha256": "ab" * 32,
        "path": "train.csv",
        "format": "csv",
    }


def test_save_and_load(tmp_path: Path) -> None:
    profile = build(sample_columns())
    path = tmp_path / "profile.json"
    save_profile(profile, path)
    assert path.read_bytes() == profile.to_json()
    assert load_profile(path) == profile
    assert load_profile(str(path)).profile_id == profile.profile_id


def test_profile_id_is_stable_and_content_sensitive() -> None:
    a = build(sample_columns())
    b = build(sample_columns())
    assert a.profile_id == b.profile_id
    assert len(a.profile_id) == 16 and int(a.profile_id, 16) >= 0
    d = a.to_dict()
    del d["profile_id"]
    canonical = orjson.dumps(d, option=orjson.OPT_SORT_KEYS)
    assert a.profile_id == hashlib.sha256(canonical).hexdigest()[:16]
    assert build(sample_columns(seed=2)).profile_id != a.profile_id
    other_version = build_profile(
        sample_columns(), model_id="fraud", model_version="4", source=SOURCE
    )
    assert other_version.profile_id != a.profile_id
    changed = sample_columns()
    changed["visits"][0] = int(changed["visits"][0]) + 1  # type: ignore[arg-type]
    assert build(changed).profile_id != a.profile_id


def test_profile_id_ignores_column_order() -> None:
    cols = sample_columns()
    reversed_cols = dict(reversed(list(cols.items())))
    assert build(reversed_cols).to_json() == build(cols).to_json()


def good_dict() -> dict[str, Any]:
    return orjson.loads(build(sample_columns()).to_json())  # type: ignore[no-any-return]


def load_bad(tmp_path: Path, d: dict[str, Any]) -> str:
    d.pop("profile_id", None)
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps(d))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_error_names_file_and_key_path(tmp_path: Path) -> None:
    d = good_dict()
    d["features"]["amount"]["bins"]["counts"].pop()
    message = load_bad(tmp_path, d)
    assert message.endswith("features.amount.bins.counts: expected 10 counts, got 9")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("model_id"), "model_id: missing"),
        (lambda d: d.update(row_count=-1), "row_count: expected a non-negative integer"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (lambda d: d["source"].update(sha256="xyz"), "source.sha256: expected 64"),
        (lambda d: d["source"].update(kind="magic"), "source.kind: expected one of"),
        (lambda d: d["features"]["amount"].update(kind="text"), "features.amount.kind"),
        (
            lambda d: d["features"]["amount"]["quantiles"].pop(),
            "features.amount.quantiles: expected 101 values, got 100",
        ),
        (
            lambda d: d["features"]["amount"]["quantiles"].__setitem__(3, "x"),
            "features.amount.quantiles[3]: expected a number",
        ),
        (
            lambda d: d["features"]["amount"]["fine_bins"]["edges"].reverse(),
            "features.amount.fine_bins.edges: edges must be strictly increasing",
        ),
        (
            lambda d: d["features"]["amount"]["bins"]["counts"].__setitem__(0, 1.5),
            "features.amount.bins.counts[0]: expected a non-negative integer",
        ),
        (
            lambda d: d["features"]["amount"].update(count=1),
            "features.amount.count: count + missing_count",
        ),
        (lambda d: d["features"]["amount"].pop("std"), "features.amount.std: missing"),
        (
            lambda d: d["features"]["country"]["categories"].update(de=-1),
            "features.country.categories.de: expected a non-negative integer",
        ),
        (
            lambda d: d["features"]["country"].update(other_count=3),
            "features.country.categories: category counts plus other_count",
        ),
        (
            lambda d: d["features"]["is_new"]["categories"].update(maybe=0),
            "features.is_new.categories: a boolean feature",
        ),
        (
            lambda d: d["features"]["country"].update(bins={}),
            "features.country.bins: unknown key",
        ),
        (lambda d: d.update(features=[]), "features: expected an object"),
    ],
)
def test_validation_messages(tmp_path: Path, mutate: Any, expected: str) -> None:
    d = good_dict()
    mutate(d)
    assert expected in load_bad(tmp_path, d)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unsupported_schema_version(tmp_path: Path, version: Any) -> None:
    d = good_dict()
    d["schema_version"] = version
    message = load_bad(tmp_path, d)
    assert "schema_version" in message
    if version is not None:
        assert "unsupported schema_version" in message and "reads schema_version 1" in message


def test_edited_profile_id_is_rejected_and_missing_one_accepted(tmp_path: Path) -> None:
    d = good_dict()
    d["features"]["amount"]["mean"] += 1.0
    with pytest.raises(ProfileError, match="profile_id: the file says"):
        ReferenceProfile.from_dict(d)
    del d["profile_id"]
    assert ReferenceProfile.from_dict(d).features["amount"].numeric is not None


def test_unreadable_and_invalid_json_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "nope.json")
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"schema_version": 1,')
    with pytest.raises(ProfileError, match=rf"^{path}: not valid JSON"):
        load_profile(path)
