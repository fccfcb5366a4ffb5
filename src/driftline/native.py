"""Driftline's optional compiled extension, ``driftline._fastdecode``.

It holds fast paths of :func:`driftline.events.decode_batch` and
:meth:`driftline.sketches.BinCounts.update`; the pure-Python code next to each stays the
reference and gives identical results. :func:`extension` returns the module, or ``None``
when it is not built (setup.py builds it optionally) or ``DRIFTLINE_PURE_PYTHON`` is set to
anything but ``""`` or ``"0"``. Its users call it once, at import.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

__all__ = ["extension"]

log = logging.getLogger(__name__)


def extension() -> ModuleType | None:
    """The compiled extension, or ``None`` (not built, or ``DRIFTLINE_PURE_PYTHON=1``)."""
    if os.environ.get("DRIFTLINE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from driftline import _fastdecode
    except ImportError as error:
        log.debug("native extension unavailable, computing in Python: %s", error)
        return None
    return _fastdecode
