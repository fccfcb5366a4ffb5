"""LabelJoin equals the per-event reference for any stream, any split and any checkpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.labels import JoinLimits, LabelJoin, index, ring
from tests.labels.reference import ReferenceJoin
from tests.labels.streams import Event, batches, limits_strategy, pair_tuples, streams


@pytest.fixture(params=["production sizes", "tiny chunks"], autouse=True)
def storage_sizes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Also run with tiny chunks, capacities and index slack, so that ring growth,
    wrap-around, chunk sweeps and index merges happen within short streams."""
    saved = ring.CHUNK, ring.MIN_CAPACITY, index.SLACK
    if request.param == "tiny chunks":
        ring.CHUNK, ring.MIN_CAPACITY, index.SLACK = 2, 1, 0
    yield
    ring.CHUNK, ring.MIN_CAPACITY, index.SLACK = saved


def run_both(
    events: list[Event], limits: JoinLimits, cuts: list[int], checkpoint_at: set[int] = frozenset()
) -> None:
    join, reference = LabelJoin(limits), ReferenceJoin(limits)
    for k, batch in enumerate(batches(events, cuts)):
        if k in checkpoint_at:
            join = LabelJoin.from_state(join.to_state(), limits)
        assert pair_tuples(join.process(batch)) == reference.process(batch)
        assert join.counts.to_dict() == reference.snapshot()


@settings(max_examples=300, deadline=None)
@given(streams(), limits_strategy, st.lists(st.integers(0, 60), max_size=8))
def test_equals_the_reference_for_any_split(
    events: list[Event], limits: JoinLimits, cuts: list[int]
) -> None:
    run_both(events, limits, cuts)


@settings(max_examples=150, deadline=None)
@given(streams(), limits_strategy)
def test_equals_the_reference_one_event_per_batch(events: list[Event], limits: JoinLimits) -> None:
    run_both(events, limits, list(range(len(events))))


@settings(max_examples=200, deadline=None)
@given(
    streams(),
    limits_strategy,
    st.lists(st.integers(0, 60), max_size=6),
    st.sets(st.integers(0, 6), max_size=4),
)
def test_restored_state_continues_exactly(
    events: list[Event], limits: JoinLimits, cuts: list[int], checkpoint_at: set[int]
) -> None:
    run_both(events, limits, cuts, checkpoint_at)


@settings(max_examples=100, deadline=None)
@given(streams(), limits_strategy, st.lists(st.integers(0, 60), max_size=6))
def test_state_bytes_do_not_depend_on_the_split(
    events: list[Event], limits: JoinLimits, cuts: list[int]
) -> None:
    whole, split = LabelJoin(limits), LabelJoin(limits)
    for batch in batches(events, []):
        whole.process(batch)
    for batch in batches(events, cuts):
        split.process(batch)
    restored = LabelJoin.from_state(split.to_state(), limits)
    assert whole.to_state() == split.to_state() == restored.to_state()


@settings(max_examples=200, deadline=None)
@given(streams(), limits_strategy, st.lists(st.integers(0, 60), max_size=6))
def test_every_prediction_and_label_is_accounted_for(
    events: list[Event], limits: JoinLimits, cuts: list[int]
) -> None:
    join = LabelJoin(limits)
    for batch in batches(events, cuts):
        join.process(batch)
    c = join.counts
    predictions = sum(kind in "pi" for _, _, _, kind, _ in events)
    feedback = sum(kind == "l" for _, _, _, kind, _ in events)
    assert predictions == c.joined + c.expired + c.pending_now
    assert feedback == (
        c.joined - c.inline + c.unmatched + c.duplicate + c.late + c.early_buffered_now
    )
