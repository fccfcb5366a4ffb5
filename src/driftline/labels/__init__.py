"""The label join: predictions meet their labels (ground truth), in bounded memory.

One :class:`LabelJoin` per model version. It reads the version's events in stream order
(``position``); the outcome is identical however the stream is cut into batches, and a
join restored from :meth:`LabelJoin.to_state` continues exactly as the saved one would.
Event time only: the *watermark* at position p is the max event time of the version's
events up to and including p. ``H`` below is ``horizon_seconds``.

**Predictions.** Each prediction is *remembered* until ``max_pending`` more predictions have
arrived (a FIFO ring by arrival order). A remembered prediction is *pending* until it joins
a label or expires. It is *available* at position p while it is pending, remembered and its
event time >= watermark(p) - H. A pending prediction that stops being available *expires*
(counted ``expired``, once). A prediction whose event_id is the same as a pending
prediction's *replaces* it: the earlier one expires (counted ``expired``) and labels join
the later one. Joined and expired predictions stay remembered (this is how duplicate and
late labels are told apart from early ones) and leave with the ring.

**Feedback labels** (a label event without prediction), at position p with event time t,
against the latest remembered prediction with the same event_id:

1. it is available: they **join** at p;
2. it has joined already: the label is a ``duplicate``;
3. it expired by the horizon and t - its event time > H: the label is ``late``;
4. otherwise (no such prediction, or one that expired with the label within H of it): the
   label **waits** as an early label, unless a label with that event_id is already
   waiting: then it is a ``duplicate``.

Every feedback label is numbered like predictions; a waiting label is *available* while
fewer than ``max_early_labels`` feedback labels arrived after it and its event time >=
watermark(p) - H. A waiting label that stops being available is ``unmatched``.

**Prediction events**, at position p with event time t:

- a label inside the event (*inline*) joins at once (``joined`` and ``inline``); a label
  waiting for its id is then a ``duplicate``;
- otherwise, if a label for its id is waiting (available): when the label's time - t > H
  the label is ``late`` (and the prediction, older than watermark - H, expires at once);
  else they **join** at p (the label delay label_time - prediction_time is then often < 0);
- otherwise the prediction is pending.

A joined pair reports both values and event times and ``completed_at`` (the position of the
later event); a batch's pairs are ordered by it. Events with neither prediction nor label
only move the watermark. Nothing here is ever a dead letter: every prediction ends up in
exactly one of joined / expired / pending, every feedback label in exactly one of joined /
duplicate / late / unmatched / waiting (:class:`JoinCounts`).

**Ids** are hashed to 64 bits (BLAKE2b, stable across processes); two ids with the same
hash are treated as one: with a million ids held the chance is about 3e-8.

**Memory**: about 29 bytes per remembered prediction or feedback label (event time, value,
a flag, and 12 bytes of index), so at most about 29 x (``max_pending`` +
``max_early_labels``) bytes per model version; the arrays grow with use. The checkpoint
holds the same, about 29 bytes per remembered prediction.
"""

from driftline.labels.ids import hash_ids
from driftline.labels.join import (
    JoinCounts,
    JoinedPairs,
    JoinInput,
    JoinLimits,
    LabelJoin,
)
from driftline.labels.settings import LabelSettings

__all__ = [
    "JoinCounts",
    "JoinInput",
    "JoinLimits",
    "JoinedPairs",
    "LabelJoin",
    "LabelSettings",
    "hash_ids",
]
