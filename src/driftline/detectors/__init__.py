"""Drift detectors.

``base`` (the detector contract), ``windowed`` and ``stream`` (one class per detector),
``catalog`` (the registry), ``feature_window`` (a feature's window state), ``reference``
and ``distribution`` (the binned statistics), ``adwin`` and ``page_hinkley`` (river-identical
stream detectors, exported here).
"""

from driftline.detectors.adwin import ADWIN
from driftline.detectors.page_hinkley import PageHinkley, PageHinkleyBank

__all__ = ["ADWIN", "PageHinkley", "PageHinkleyBank"]
