"""Text messages through a pluggable backend, like Django's email backends.

`settings.KETACLINIC_SMS_BACKEND` names the class: the console backend (the default; prints
messages, as the demo's email does) or the in-memory backend for tests. A gateway integration
(Twilio, Amazon SNS, ...) is one class with `send_messages`; no caller changes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class TextMessage:
    to: str
    body: str


class SmsBackend(Protocol):
    def send_messages(self, messages: Sequence[TextMessage]) -> int:
        """Send the messages; return how many were sent."""
        ...


class ConsoleSmsBackend:
    """Writes each message to standard output."""

    _lock = threading.Lock()

    def send_messages(self, messages: Sequence[TextMessage]) -> int:
        with self._lock:
            for message in messages:
                sys.stdout.write(f"SMS to {message.to}\n{message.body}\n{'-' * 40}\n")
            sys.stdout.flush()
        return len(messages)


# Messages sent by LocmemSmsBackend, for tests (cleared by the test that reads it).
outbox: list[TextMessage] = []


class LocmemSmsBackend:
    """Keeps messages in `ketaclinic.core.sms.outbox`."""

    def send_messages(self, messages: Sequence[TextMessage]) -> int:
        outbox.extend(messages)
        return len(messages)


def get_backend() -> SmsBackend:
    backend_class = import_string(settings.KETACLINIC_SMS_BACKEND)
    backend: SmsBackend = backend_class()
    return backend


def send_sms(to: str, body: str) -> int:
    return get_backend().send_messages([TextMessage(to, body)])
