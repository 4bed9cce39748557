from __future__ import annotations

import pytest
import time_machine

from tests.screening.builders import NOW


@pytest.fixture
def frozen_now():
    """Monday 2 March 2026, noon in Boston (clinic A's time zone)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


# The controlled-substance ledger fixtures (catalogue, safe, fast witness passwords).
from tests.controlled_substances.conftest import fast_passwords, lg  # noqa: E402, F401
