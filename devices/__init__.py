"""pocketfit devices: profiles, estimators and policies; numpy only, readable from anywhere."""

from devices.host import host_info

__all__ = ["host_info"]
