"""The contract every incremental (stream) detector meets."""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np
import numpy.typing as npt


class StreamDetector(Protocol):
    """An incremental change detector over one stream of numbers.

    Semantics follow river's ``river.base.DriftDetector``: after the value at which a
    drift is detected, ``drift_detected`` is true until the next update, which first resets
    the detector to a completely fresh state.
    """

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None:
        """Consume one value (same as river's ``update``)."""

    def update_many(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Consume ``values`` in order; return the positions within ``values`` at which a
        drift was detected. Equal to calling :meth:`update` once per value."""

    def to_bytes(self) -> bytes:
        """Serialise the full state (parameters included)."""

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a detector from :meth:`to_bytes`; it continues exactly where it was."""
