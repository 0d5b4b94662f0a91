"""The digits data set (scikit-learn's bundled 8x8 handwritten digits) and its fixed split.

Training, the shipped accuracy numbers, the tests and the demos all use this one split, so the
held-out accuracy in docs/models.md can be re-measured by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 20261125
TEST_FRACTION = 0.3
PIXEL_MAX = 16  # raw pixel values are integers 0..16


@dataclass(frozen=True)
class DigitsSplit:
    """Raw integer pixels (n, 64) and labels, train and held-out test."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def load_split() -> DigitsSplit:
    """The fixed stratified 70/30 split of all 1,797 digits (pixels as int64 0..16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.data.astype(np.int64)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return DigitsSplit(x_tr, x_te, y_tr, y_te)
