"""/api/v1/controlled-substances."""

from ninja import Router

router = Router()
