"""core.reversing: URLs reversed once must equal what reverse() gives each time."""

from __future__ import annotations

import pytest
from django.urls import reverse, set_script_prefix

from ketaclinic.core.reversing import reverse_fixed, reverse_with_id


@pytest.mark.parametrize("prefix", ["/", "/clinic/"])
@pytest.mark.parametrize("object_id", [1, 42, 918_273_645, 2**62])
def test_reverse_with_id_equals_reverse(prefix: str, object_id: int) -> None:
    set_script_prefix(prefix)
    try:
        for name in ("patients:chart", "patients:edit"):
            assert reverse_with_id(name, object_id) == reverse(name, args=[object_id])
        assert reverse_fixed("patients:list") == reverse("patients:list")
        assert reverse_fixed("patients:list").startswith(prefix)
    finally:
        set_script_prefix("/")
