"""Drift detectors: incremental (stream) detectors and their shared protocol."""

from driftline.detectors.adwin import ADWIN
from driftline.detectors.page_hinkley import PageHinkley, PageHinkleyBank

__all__ = ["ADWIN", "PageHinkley", "PageHinkleyBank"]
