"""/api/v1/sessions: treatment sessions for nurses and prescribers, with role checks and audit."""

from __future__ import annotations

from ninja import Router

router = Router()
