"""The portal tests share the measurement fixtures (frozen clock, plans, enrolled patient)."""

from tests.measures.conftest import clock, enrolled, phq9_weekly_plan, sms_outbox

__all__ = ["clock", "enrolled", "phq9_weekly_plan", "sms_outbox"]
