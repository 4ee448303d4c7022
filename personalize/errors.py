"""Errors the device runtime raises: each message says what was refused and why."""

from __future__ import annotations


class PersonalizeError(Exception):
    """Base class of the errors :mod:`personalize` raises on purpose."""


class EnrollmentError(PersonalizeError, ValueError):
    """An enrollment that was refused (bad samples, over budget, bad arguments); nothing changed."""


class StoreError(PersonalizeError):
    """A record or key the store refuses: wrong key, tampered record, unsafe key file."""


class UnknownUserError(PersonalizeError, LookupError):
    """No record for this user in the store."""


class SensorDpiError(StoreError):
    """A record enrolled from captures at another sensor resolution than the Device takes;
    ``user``, ``enrolled`` and ``given`` let a front end name its own remedy (the CLI's
    ``--dpi``)."""

    def __init__(self, message: str, *, user: str, enrolled: float, given: float) -> None:
        super().__init__(message)
        self.user, self.enrolled, self.given = user, enrolled, given
