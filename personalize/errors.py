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
