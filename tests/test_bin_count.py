"""The native bin counter (``driftline._fastdecode.bin_count``) against the numpy code.

``BinCounts.update`` counts with the compiled extension when it is there and with numpy
when ``native=False``; the numpy code is the reference. Every property test feeds the same
batches to both and asserts identical state bit for bit: counts (int64), missing, and
minimum / maximum including the sign of a zero. Inputs: hypothesis (derandomized) edges
and values with NaN, values on and next to edges, signed zeros, huge and subnormal
magnitudes, empty batches, and non-contiguous or non-float64 layouts.
"""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline import sketches
from driftline.sketches import BinCounts

DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=300, database=None)
INF_MESSAGE = "values must be finite (NaN marks a missing value)"

native = pytest.mark.skipif(
    sketches._NATIVE_BIN_COUNT is None, reason="native bin counter not built (pure-Python path)"
)


def _bits(value: float) -> str:
    return struct.pack("<d", value).hex()


def _state(sketch: BinCounts) -> dict[str, Any]:
    counts = sketch.counts
    return {
        "edges": [_bits(e) for e in sketch.edges.tolist()],
        "counts": (counts.dtype.str, counts.tolist()),
        "missing": (type(sketch.missing), sketch.missing),
        "minimum": (type(sketch.minimum), _bits(sketch.minimum)),
        "maximum": (type(sketch.maximum), _bits(sketch.maximum)),
    }


def _bin_count() -> Any:
    assert sketches._NATIVE_BIN_COUNT is not None
    return sketches._NATIVE_BIN_COUNT


# --- strategies ---------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
extreme = st.sampled_from(
    [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308, 1.7976931348623157e308]
)
edges_st = st.lists(
    st.one_of(finite, extreme, st.integers(-5, 5).map(float)), max_size=40, unique=True
).map(lambda xs: sorted({0.0 if x == 0 else x for x in xs}))  # strictly increasing


@st.composite
def values_for(draw: st.DrawFn, edges: list[float]) -> list[float]:
    near = [math.nextafter(e, d) for e in edges for d in (-math.inf, math.inf)]
    near = [x for x in near if math.isfinite(x)]
    choices = [st.just(math.nan), finite, extreme, st.integers(-6, 6).map(float)]
    if edges:
        choices += [st.sampled_from(edges), st.sampled_from(near)]  # near: never empty
    return draw(st.lists(st.one_of(*choices), max_size=80))


@st.composite
def edges_and_batches(draw: st.DrawFn) -> tuple[list[float], list[list[float]]]:
    edges = draw(edges_st)
    return edges, draw(st.lists(values_for(edges), min_size=1, max_size=4))


def _layout(values: list[float], how: str) -> npt.NDArray[Any] | list[float]:
    """The same values (in the same flat order) as a contiguous array, a strided view, ..."""
    arr = np.array(values, dtype=np.float64)
    if how == "strided":  # every other element of a twice as long array
        doubled = np.full(2 * arr.size, 7.0)
        doubled[::2] = arr
        return doubled[::2]
    if how == "reversed":
        return arr[::-1][::-1]  # a view with a negative stride twice: same order
    if how == "column":  # F-ordered 2-D: flattened in C order, like reshape(-1)
        return np.asfortranarray(arr.reshape(-1, 1))
    if how == "big-endian":
        return arr.astype(">f8")
    if how == "list":
        return values
    return arr


LAYOUTS = ["contiguous", "strided", "reversed", "column", "big-endian", "list"]


# --- native and numpy agree ---------------------------------------------------------------


@native
@DETERMINISTIC
@given(edges_and_batches(), st.sampled_from(LAYOUTS))
def test_native_and_numpy_paths_agree(
    case: tuple[list[float], list[list[float]]], layout: str
) -> None:
    edges, batches = case
    fast, reference = BinCounts(edges), BinCounts(edges)
    for values in batches:
        batch = _layout(values, layout)
        fast.update(batch)  # type: ignore[arg-type]
        reference.update(batch, native=False)  # type: ignore[arg-type]
        assert _state(fast) == _state(reference)
        assert fast == reference


@native
@DETERMINISTIC
@given(edges_and_batches())
def test_native_counts_match_searchsorted(case: tuple[list[float], list[list[float]]]) -> None:
    edges, batches = case
    edge_arr = np.array(edges, dtype=np.float64)
    values = np.array([v for batch in batches for v in batch], dtype=np.float64)
    counts = np.full(edge_arr.size + 1, 3, dtype=np.int64)
    missing, low, high, _ = _bin_count()(values, edge_arr, counts)
    present = values[~np.isnan(values)]
    expected = 3 + np.bincount(
        np.searchsorted(edge_arr, present, side="right"), minlength=edge_arr.size + 1
    )
    assert counts.tolist() == expected.tolist()
    assert missing == values.size - present.size
    if present.size:
        assert (low, high) == (present.min(), present.max())
    else:
        assert math.isnan(low) and math.isnan(high)


@native
@DETERMINISTIC
@given(st.lists(st.sampled_from([0.0, -0.0, math.nan, 1.0, -1.0]), max_size=70))
def test_signed_zero_extremes_are_numpys(values: list[float]) -> None:
    # numpy's min/max pick between 0.0 and -0.0 by SIMD lane; the native path defers to it
    fast, reference = BinCounts([-0.0]), BinCounts([0.0])
    fast.update(np.array(values))
    reference.update(np.array(values), native=False)
    assert _state(fast)["counts"] == _state(reference)["counts"]
    assert _state(fast)["minimum"] == _state(reference)["minimum"]
    assert _state(fast)["maximum"] == _state(reference)["maximum"]


@native
def test_zero_tie_is_flagged_only_when_signs_mix_at_an_extreme() -> None:
    edges = np.array([0.0])

    def tie(values: list[float]) -> bool:
        return bool(_bin_count()(np.array(values), edges, np.zeros(2, dtype=np.int64))[3])

    assert tie([0.0, -0.0]) and tie([1.0, -0.0, 0.0]) and tie([-1.0, 0.0, -0.0])
    assert not tie([0.0, 0.0, 1.0]) and not tie([-0.0, -0.0]) and not tie([-1.0, 0.0, -0.0, 1.0])


@native
def test_many_edges_and_large_batches() -> None:
    # > 256 bins (heap scratch), > 16 edges (binary search), >= 65536 values (GIL released)
    rng = np.random.default_rng(7)
    edges = np.unique(rng.normal(size=300))
    values = rng.normal(size=70_000)
    values[rng.integers(0, values.size, 500)] = np.nan
    values[:300] = edges  # on the edges
    fast, reference = BinCounts(edges), BinCounts(edges)
    fast.update(values)
    reference.update(values, native=False)
    assert _state(fast) == _state(reference)


# --- infinities ---------------------------------------------------------------------------


@DETERMINISTIC
@given(
    edges_and_batches(),
    st.sampled_from([math.inf, -math.inf]),
    st.integers(0, 100),
    st.booleans(),
)
def test_infinity_raises_and_changes_nothing(
    case: tuple[list[float], list[list[float]]], inf: float, where: int, use_native: bool
) -> None:
    edges, batches = case
    sketch = BinCounts(edges)
    sketch.update(np.array(batches[0]), native=use_native)
    before = _state(sketch)
    bad = list(batches[-1])
    bad.insert(where % (len(bad) + 1), inf)
    with pytest.raises(ValueError, match=INF_MESSAGE.replace("(", r"\(").replace(")", r"\)")):
        sketch.update(np.array(bad), native=use_native)
    assert _state(sketch) == before


# --- bad buffers --------------------------------------------------------------------------


@native
@pytest.mark.parametrize(
    ("values", "edges", "counts", "error", "message"),
    [
        ([1.0], np.array([0.0]), np.zeros(2, np.int64), TypeError, "values must be a C-contig"),
        (np.ones(2, np.float32), np.array([0.0]), np.zeros(2, np.int64), TypeError, "format 'f'"),
        (np.ones(4)[::2], np.array([0.0]), np.zeros(2, np.int64), TypeError, "C-contiguous"),
        (np.ones(2, np.int64), np.array([0.0]), np.zeros(2, np.int64), TypeError, "values must"),
        (np.ones(2), np.array([0], np.int64), np.zeros(2, np.int64), TypeError, "edges must"),
        (np.ones(2), np.array([0.0]), np.zeros(2, np.int32), TypeError, "counts must"),
        (np.ones(2), np.array([0.0]), np.zeros(2, np.float64), TypeError, "counts must"),
        (np.ones(2), np.array([0.0]), np.zeros(2, np.uint64), TypeError, "counts must"),
        (np.ones(2), np.array([0.0]), np.zeros(2, ">i8"), TypeError, "counts must"),
        (np.ones(2), np.array([0.0]), b"\0" * 16, TypeError, "writable"),
        (np.ones(2), np.array([0.0]), np.zeros(3, np.int64), ValueError, "len\\(edges\\) \\+ 1"),
        (np.ones(2), np.array([0.0]), np.zeros(1, np.int64), ValueError, "= 2 items, got 1"),
        (np.ones(2), np.array([1.0, 0.0]), np.zeros(3, np.int64), ValueError, "increasing"),
        (np.ones(2), np.array([0.0, 0.0]), np.zeros(3, np.int64), ValueError, "increasing"),
        (np.ones(2), np.array([0.0, np.inf]), np.zeros(3, np.int64), ValueError, "finite"),
        (np.ones(2), np.array([np.nan]), np.zeros(2, np.int64), ValueError, "finite"),
    ],
)
def test_bad_buffers_raise_clear_errors(
    values: Any, edges: Any, counts: Any, error: type[Exception], message: str
) -> None:
    before = bytes(counts)
    with pytest.raises(error, match=message):
        _bin_count()(values, edges, counts)
    assert bytes(counts) == before


@native
def test_read_only_counts_and_argument_count() -> None:
    counts = np.zeros(2, dtype=np.int64)
    counts.flags.writeable = False
    with pytest.raises(TypeError, match="counts must be a writable"):
        _bin_count()(np.ones(2), np.array([0.0]), counts)
    with pytest.raises(TypeError, match="expected 3 arguments, got 2"):
        _bin_count()(np.ones(2), np.array([0.0]))


@native
def test_accepts_any_c_contiguous_shape_and_memoryviews() -> None:
    counts = np.zeros(3, dtype=np.int64)
    values = np.array([[np.nan, 0.5], [1.0, -2.0]])
    assert _bin_count()(values, memoryview(np.array([0.0, 1.0])), memoryview(counts)) == (
        1,
        -2.0,
        1.0,
        False,
    )
    assert counts.tolist() == [1, 1, 1]
    assert _bin_count()(np.array([]), np.array([]), counts[:1])[0] == 0


# --- which path runs ----------------------------------------------------------------------


def test_native_bin_count_is_there_in_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the compiled extension")
    from driftline import _fastdecode

    assert callable(_fastdecode.bin_count)
    if os.environ.get("DRIFTLINE_PURE_PYTHON", "") in ("", "0"):
        assert sketches._NATIVE_BIN_COUNT is _fastdecode.bin_count
