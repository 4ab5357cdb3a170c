"""The reliability suite: bounded in CI, longer with ``FACEREC_RELIABILITY_LONG=1``.

Each test sizes its work with :func:`scale`: the CI figure by default, the long figure when
the environment asks for the long mode (for local runs before a release).
"""

from __future__ import annotations

import os

LONG = os.environ.get("FACEREC_RELIABILITY_LONG", "") not in ("", "0")


def scale(ci: int, long: int) -> int:
    """How many cases, cycles or requests a test runs in this mode."""
    return long if LONG else ci
