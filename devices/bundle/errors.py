"""The one error a bundle reader raises, and its signature flavour."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle is malformed, truncated or corrupt; the message says where and how."""


class SignatureError(BundleError):
    """A bundle's signature does not verify with the given public key."""
