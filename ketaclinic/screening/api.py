"""/api/v1/screening."""

from ninja import Router

router = Router()
