"""/api/v1/measures."""

from ninja import Router

router = Router()
