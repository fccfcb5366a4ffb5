"""The bridge's state: latest alert per fingerprint, per-Alertmanager pending sets, commits."""

from __future__ import annotations

import pytest

from driftline.alertmanager.delivery import Deliveries
from driftline.alertmanager.payload import BridgeAlert, parse_alert_event
from tests.alertmanager.alert_events import AlertMaker

A, B = "http://am-a:9093", "http://am-b:9093"


def _parsed(alert: object) -> BridgeAlert:
    return parse_alert_event(alert.to_json())  # type: ignore[attr-defined]


@pytest.fixture
def maker() -> AlertMaker:
    return AlertMaker()


def _accept_all(deliveries: Deliveries, target: str) -> list[BridgeAlert]:
    push = deliveries.pending(target)
    deliveries.accepted(push)
    return list(push.alerts)


def test_resolved_removes_an_alert_from_the_firing_set(maker: AlertMaker) -> None:
    deliveries = Deliveries([A])
    deliveries.apply(0, 0, _parsed(maker.fire("amount")))
    deliveries.apply(0, 1, _parsed(maker.fire("age")))
    assert [a.labels["feature"] for a in deliveries.firing()] == sorted(["amount", "age"])
    deliveries.apply(0, 2, _parsed(maker.resolve("amount")))
    assert [a.labels["feature"] for a in deliveries.firing()] == ["age"]
    pushed = _accept_all(deliveries, A)
    assert sorted((a.labels["feature"], a.status) for a in pushed) == [
        ("age", "firing"),
        ("amount", "resolved"),
    ]
    # The delivered resolved alert is forgotten, the firing one kept.
    assert deliveries.known() == 1
    assert deliveries.committable() == {0: 3}


def test_re_firing_after_resolve_fires_again(maker: AlertMaker) -> None:
    deliveries = Deliveries([A])
    first = _parsed(maker.fire("amount"))
    deliveries.apply(0, 0, first)
    deliveries.apply(0, 1, _parsed(maker.resolve("amount")))
    again = _parsed(maker.fire("amount"))
    deliveries.apply(0, 2, again)
    assert again.fingerprint == first.fingerprint
    assert deliveries.firing() == [again]
    assert _accept_all(deliveries, A) == [again]  # only the newest state is pushed


def test_older_record_of_the_same_partition_does_not_win(maker: AlertMaker) -> None:
    deliveries = Deliveries([A])
    fired = _parsed(maker.fire("amount"))
    resolved = _parsed(maker.resolve("amount"))
    deliveries.apply(0, 5, resolved)
    deliveries.apply(0, 4, fired)  # a re-read of an older offset
    assert deliveries.firing() == []


def test_a_state_that_changed_during_a_push_stays_pending(maker: AlertMaker) -> None:
    deliveries = Deliveries([A])
    deliveries.apply(0, 0, _parsed(maker.fire("amount")))
    push = deliveries.pending(A)
    resolved = _parsed(maker.resolve("amount"))
    deliveries.apply(0, 1, resolved)  # arrives while the push is in flight
    deliveries.accepted(push)
    assert deliveries.pending(A).alerts == (resolved,)
    assert deliveries.committable() == {0: 1}  # the resolve is not delivered yet
    _accept_all(deliveries, A)
    assert deliveries.committable() == {0: 2}
    assert deliveries.known() == 0


def test_commits_wait_for_every_alertmanager(maker: AlertMaker) -> None:
    deliveries = Deliveries([A, B])
    deliveries.apply(0, 0, _parsed(maker.fire("amount")))
    deliveries.apply(1, 0, _parsed(maker.fire("age")))
    _accept_all(deliveries, A)
    assert deliveries.committable() == {}  # B (down) accepted nothing
    deliveries.apply(0, 1, _parsed(maker.resolve("amount")))
    assert [a.status for a in deliveries.pending(A).alerts] == ["resolved"]
    # B, back, gets only the newest state of each alert.
    assert sorted((a.labels["feature"], a.status) for a in _accept_all(deliveries, B)) == [
        ("age", "firing"),
        ("amount", "resolved"),
    ]
    assert deliveries.committable() == {0: 1, 1: 1}  # A has not accepted the resolve
    _accept_all(deliveries, A)
    assert deliveries.committable() == {0: 2, 1: 1}


def test_skipped_records_are_covered_without_a_push(maker: AlertMaker) -> None:
    deliveries = Deliveries([A])
    deliveries.skip(0, 0)
    deliveries.skip(0, 1)
    assert deliveries.pending(A).alerts == ()
    assert deliveries.committable() == {0: 2}
    assert deliveries.skipped == 2


def test_resend_makes_firing_alerts_pending_everywhere(maker: AlertMaker) -> None:
    deliveries = Deliveries([A, B])
    deliveries.apply(0, 0, _parsed(maker.fire("amount")))
    deliveries.apply(0, 1, _parsed(maker.fire("age")))
    deliveries.apply(0, 2, _parsed(maker.resolve("age")))
    _accept_all(deliveries, A)
    _accept_all(deliveries, B)
    assert deliveries.pending(A).alerts == ()
    assert deliveries.resend_firing() == 1
    for target in (A, B):
        assert [a.labels["feature"] for a in deliveries.pending(target).alerts] == ["amount"]


def test_restart_rebuild_from_the_topic(maker: AlertMaker) -> None:
    """The topic re-read from the beginning, with offsets 0..2 of partition 0 and 0 of
    partition 1 committed by the previous run."""
    records = [
        (0, 0, maker.fire("amount")),
        (1, 0, maker.fire("age")),
        (0, 1, maker.fire("income")),
        (0, 2, maker.resolve("amount")),  # delivered before the restart
        (0, 3, maker.resolve("income")),  # not delivered before the restart
        (1, 1, maker.fire("city")),  # not delivered before the restart
    ]
    deliveries = Deliveries([A], start={0: 3, 1: 1})
    for partition, offset, alert in records:
        deliveries.apply(partition, offset, _parsed(alert))
    # Before the resend: what arrived after the commits.
    assert sorted((a.labels["feature"], a.status) for a in deliveries.pending(A).alerts) == [
        ("city", "firing"),
        ("income", "resolved"),
    ]
    assert sorted(a.labels["feature"] for a in deliveries.firing()) == ["age", "city"]
    deliveries.resend_firing()
    assert sorted((a.labels["feature"], a.status) for a in _accept_all(deliveries, A)) == [
        ("age", "firing"),
        ("city", "firing"),
        ("income", "resolved"),
    ]
    assert deliveries.committable() == {0: 4, 1: 2}
    assert deliveries.known() == 2  # the two firing alerts


def test_committable_never_goes_below_the_start() -> None:
    deliveries = Deliveries([A], start={0: 10})
    assert deliveries.committable() == {0: 10}
    with pytest.raises(ValueError, match="target"):
        Deliveries([])


def test_one_fingerprint_in_two_partitions_does_not_break_pending(maker: AlertMaker) -> None:
    """Partition B's newer firing record is pending; partition A's older resolved record,
    delivered in an earlier run (below A's start), arrives next: the state stays usable."""
    fired = _parsed(maker.fire("amount"))
    resolved = _parsed(maker.resolve("amount"))
    refired = _parsed(maker.fire("amount"))
    assert fired.fingerprint == resolved.fingerprint == refired.fingerprint
    deliveries = Deliveries([A, B], start={0: 5, 1: 0})
    deliveries.apply(1, 0, refired)  # partition 1, not delivered yet: pending
    deliveries.apply(0, 3, resolved)  # partition 0, older event, delivered earlier
    for target in (A, B):
        assert deliveries.pending(target).alerts == (refired,)
    assert deliveries.firing() == [refired]


def test_across_partitions_the_newer_event_wins_whatever_the_order_read(
    maker: AlertMaker,
) -> None:
    fired = _parsed(maker.fire("amount"))
    resolved = _parsed(maker.resolve("amount"))
    deliveries = Deliveries([A], start={0: 5, 1: 0})
    deliveries.apply(1, 0, resolved)  # newer, not delivered yet
    deliveries.apply(0, 3, fired)  # older, in another partition
    assert deliveries.firing() == []
    assert deliveries.pending(A).alerts == (resolved,)
    deliveries = Deliveries([A], start={0: 5, 1: 0})
    deliveries.apply(1, 0, fired)  # older, not delivered yet
    deliveries.apply(0, 3, resolved)  # newer, delivered in an earlier run
    assert deliveries.firing() == [] and deliveries.pending(A).alerts == ()
    assert deliveries.known() == 0
