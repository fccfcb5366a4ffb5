"""Sketches merge exactly: merge(sketch(a), sketch(b)) == sketch(a + b), in any grouping."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.sketches import BinCounts, CategoryCounts

EDGES = [-10.0, -1.0, 0.0, 0.5, 1.0, 100.0]
CATEGORIES = ["a", "b", "c"]

values_st = st.lists(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        st.sampled_from(EDGES),  # values exactly on an edge
        st.just(math.nan),
    ),
    max_size=60,
)
keys_st = st.lists(
    st.one_of(st.none(), st.sampled_from(CATEGORIES), st.text(max_size=3)), max_size=60
)


def bin_sketch(values: list[float]) -> BinCounts:
    sketch = BinCounts(EDGES)
    sketch.update(np.array(values, dtype=np.float64))
    return sketch


def cat_sketch(keys: Sequence[str | None], max_unseen: int = 4) -> CategoryCounts:
    sketch = CategoryCounts(CATEGORIES, max_unseen=max_unseen)
    sketch.update(keys)
    return sketch


def split(data: st.DataObject, items: list[object], parts: int) -> list[list[object]]:
    cuts = sorted(
        data.draw(st.lists(st.integers(0, len(items)), min_size=parts - 1, max_size=parts - 1))
    )
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


# --------------------------------------------------------------------------- BinCounts


def test_bin_counts_follow_searchsorted_right_convention() -> None:
    sketch = BinCounts([0.0, 1.0])
    sketch.update(np.array([-0.5, 0.0, 0.5, 1.0, 2.0, math.nan, math.nan]))
    # 0.0 and 1.0 sit on edges and belong to the bin to their right
    assert sketch.counts.tolist() == [1, 2, 2]
    assert sketch.missing == 2
    assert sketch.total == 5
    assert (sketch.minimum, sketch.maximum) == (-0.5, 2.0)
    assert sketch.counts.dtype == np.int64


def test_empty_bin_counts() -> None:
    sketch = BinCounts([])
    assert sketch.counts.tolist() == [0]
    assert math.isnan(sketch.minimum) and math.isnan(sketch.maximum)
    sketch.update(np.array([math.nan]))
    assert sketch.total == 0 and sketch.missing == 1
    assert sketch.to_dict()["minimum"] is None
    assert BinCounts.from_dict(sketch.to_dict()) == sketch


@given(values=values_st)
def test_bin_counts_match_boolean_masks(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    sketch = bin_sketch(values)
    present = x[~np.isnan(x)]
    bounds = [-math.inf, *EDGES, math.inf]
    expected = [
        int(((present >= lo) & (present < hi)).sum()) for lo, hi in itertools.pairwise(bounds)
    ]
    assert sketch.counts.tolist() == expected
    assert sketch.missing == int(np.isnan(x).sum())


@given(values=values_st, data=st.data())
def test_bin_merge_of_parts_equals_sketch_of_whole(
    values: list[float], data: st.DataObject
) -> None:
    parts = split(data, list(values), data.draw(st.integers(1, 4)))
    merged = bin_sketch([])
    for part in parts:
        merged = merged.merge(bin_sketch(part))  # type: ignore[arg-type]
    assert merged == bin_sketch(values)


@given(a=values_st, b=values_st, c=values_st)
def test_bin_merge_is_associative_and_commutative(
    a: list[float], b: list[float], c: list[float]
) -> None:
    sa, sb, sc = bin_sketch(a), bin_sketch(b), bin_sketch(c)
    assert sa.merge(sb) == sb.merge(sa)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))


@given(values=values_st)
def test_bin_counts_round_trip_through_json(values: list[float]) -> None:
    sketch = bin_sketch(values)
    again = BinCounts.from_dict(orjson.loads(orjson.dumps(sketch.to_dict())))
    assert again == sketch
    assert again.to_dict() == sketch.to_dict()


def test_bin_update_in_batches_equals_one_update() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=1000)
    x[rng.random(1000) < 0.1] = np.nan
    one = BinCounts(EDGES)
    one.update(x)
    batched = BinCounts(EDGES)
    for chunk in np.array_split(x, 13):
        batched.update(chunk)
    assert batched == one


def test_bin_merge_rejects_other_edges() -> None:
    with pytest.raises(ValueError, match="different edges"):
        BinCounts([0.0, 1.0]).merge(BinCounts([0.0, 2.0]))


def test_bin_equality_sees_each_field() -> None:
    base = bin_sketch([0.2, 3.0])
    assert base != bin_sketch([0.2, 3.0, math.nan])
    assert base != bin_sketch([0.3, 3.0])  # same bins, other minimum
    assert base != bin_sketch([0.2, 0.2])
    assert base != BinCounts([0.0])


@pytest.mark.parametrize(
    "edges",
    [[1.0, 1.0], [2.0, 1.0], [0.0, math.inf], [math.nan]],
    ids=["dup", "desc", "inf", "nan"],
)
def test_bad_edges_are_rejected(edges: list[float]) -> None:
    with pytest.raises(ValueError, match="edges"):
        BinCounts(edges)


def test_infinite_values_are_rejected() -> None:
    sketch = BinCounts([0.0])
    with pytest.raises(ValueError, match="finite"):
        sketch.update(np.array([1.0, math.inf]))
    assert sketch.total == 0  # nothing half-counted


def test_bin_from_dict_validates() -> None:
    good = bin_sketch([0.2]).to_dict()
    with pytest.raises(ValueError, match="counts"):
        BinCounts.from_dict({**good, "counts": [0, 1]})
    with pytest.raises(ValueError, match="non-negative"):
        BinCounts.from_dict({**good, "missing": -1})
    with pytest.raises(ValueError, match="null"):
        BinCounts.from_dict({**good, "minimum": None})


# --------------------------------------------------------------------------- CategoryCounts


def test_category_counts_known_other_missing() -> None:
    sketch = cat_sketch(["a", "a", "c", None, "z", "z", "y", None, None])
    assert sketch.counts.tolist() == [2, 0, 1]
    assert (sketch.other, sketch.missing, sketch.total) == (3, 3, 6)
    assert sketch.unseen == {"z": 2, "y": 1}
    assert sketch.unseen_complete


@given(keys=keys_st)
def test_category_counts_match_a_direct_count(keys: list[str | None]) -> None:
    sketch = cat_sketch(keys, max_unseen=100)
    counted = Counter(keys)
    assert sketch.counts.tolist() == [counted[c] for c in CATEGORIES]
    assert sketch.missing == counted[None]
    unseen = {k: n for k, n in counted.items() if k is not None and k not in CATEGORIES}
    assert sketch.other == sum(unseen.values())
    assert sketch.unseen == unseen
    assert sketch.unseen_complete


@given(keys=keys_st, data=st.data(), max_unseen=st.integers(0, 5))
def test_category_merge_of_parts_equals_sketch_of_whole(
    keys: list[str | None], data: st.DataObject, max_unseen: int
) -> None:
    parts = split(data, list(keys), data.draw(st.integers(1, 4)))
    merged = cat_sketch([], max_unseen)
    for part in parts:
        merged = merged.merge(cat_sketch(part, max_unseen))  # type: ignore[arg-type]
    whole = cat_sketch(keys, max_unseen)
    assert merged == whole
    assert merged.unseen == whole.unseen
    assert merged.unseen_complete == whole.unseen_complete


@given(a=keys_st, b=keys_st, c=keys_st)
def test_category_merge_is_associative_and_commutative(
    a: list[str | None], b: list[str | None], c: list[str | None]
) -> None:
    sa, sb, sc = cat_sketch(a, 2), cat_sketch(b, 2), cat_sketch(c, 2)
    assert sa.merge(sb) == sb.merge(sa)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))


@given(keys=keys_st, max_unseen=st.integers(0, 5))
def test_category_counts_round_trip_through_json(keys: list[str | None], max_unseen: int) -> None:
    sketch = cat_sketch(keys, max_unseen)
    again = CategoryCounts.from_dict(orjson.loads(orjson.dumps(sketch.to_dict())))
    assert again == sketch
    assert again.to_dict() == sketch.to_dict()
    # the restored sketch keeps sampling exactly like the original
    sketch.update(["q", "r", "s", "t"])
    again.update(["q", "r", "s", "t"])
    assert again == sketch


@settings(max_examples=50)
@given(keys=st.lists(st.text(alphabet="defghijk", min_size=1, max_size=2), max_size=80))
def test_unseen_sample_keeps_exact_counts_and_is_order_free(keys: list[str]) -> None:
    forward = cat_sketch(keys, 3)
    backward = cat_sketch(keys[::-1], 3)
    assert forward == backward
    counted = Counter(keys)
    assert len(forward.unseen) == min(3, len(counted))
    for key, n in forward.unseen.items():
        assert counted[key] == n
    assert forward.unseen_complete == (len(counted) <= 3)


def test_unseen_is_ranked_by_count() -> None:
    sketch = cat_sketch(["x", "y", "y", "z", "z", "z"], 10)
    assert list(sketch.unseen.items()) == [("z", 3), ("y", 2), ("x", 1)]


def test_category_merge_rejects_other_categories() -> None:
    with pytest.raises(ValueError, match="different categories"):
        CategoryCounts(["a"]).merge(CategoryCounts(["b"]))
    with pytest.raises(ValueError, match="max_unseen"):
        CategoryCounts(["a"], max_unseen=1).merge(CategoryCounts(["a"], max_unseen=2))


def test_category_constructor_and_from_dict_validate() -> None:
    with pytest.raises(ValueError, match="distinct"):
        CategoryCounts(["a", "a"])
    good = cat_sketch(["a", "zz"]).to_dict()
    with pytest.raises(ValueError, match="not an unseen"):
        CategoryCounts.from_dict({**good, "unseen": {"a": 1}})
    with pytest.raises(ValueError, match="more than other"):
        CategoryCounts.from_dict({**good, "unseen": {"zz": 5}})
    with pytest.raises(ValueError, match="counts"):
        CategoryCounts.from_dict({**good, "counts": [1]})


def test_category_update_is_fast_path_over_distinct_keys() -> None:
    rng = np.random.default_rng(3)
    ints = rng.integers(0, 50, 20_000)
    sketch = CategoryCounts([str(i) for i in range(40)])
    sketch.update([str(k) for k in ints])
    assert sketch.total == 20_000
    assert sketch.other == int((ints >= 40).sum())
    assert sketch.counts.tolist() == np.bincount(ints, minlength=50)[:40].tolist()


def test_clear_returns_a_sketch_to_empty() -> None:
    bins = BinCounts([0.0, 1.0])
    bins.update(np.array([0.5, np.nan, 3.0]))
    bins.clear()
    assert bins == BinCounts([0.0, 1.0])
    counts = CategoryCounts(["a"])
    counts.update(["a", "b", None])
    counts.clear()
    assert counts == CategoryCounts(["a"])
