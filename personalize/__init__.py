"""pocketfit personalize: the device side (numpy + the LiteRT interpreter only).

Example:
  >>> from personalize import Device
  >>> dev = Device("artifact", "store", profile="phone_cpu", trusted_key="signing.pub")
  >>> report = dev.enroll("alice", images)
  >>> dev.verify("alice", probe)
  Decision(accept=True, score=0.83, threshold=0.61)
"""

from devices.contract import ArtifactError
from devices.trust import TrustError
from personalize.artifact import Artifact, load_artifact
from personalize.continual import Continual, ContinualConfig
from personalize.device import (
    DEFAULT_FAR,
    NO_TRAINING,
    Decision,
    Device,
    EnrollmentReport,
    Identification,
)
from personalize.errors import (
    EnrollmentError,
    PersonalizeError,
    SensorDpiError,
    StoreError,
    UnknownUserError,
)
from personalize.head import MatchConfig, SgdConfig, default_match
from personalize.install import install
from personalize.keystore import FileKeyStore, KeyStore, MemoryKeyStore, key_dir
from personalize.migrate import migrate_store
from personalize.offload import Consent, Offload, OffloadError
from personalize.quality import QualityError, check_image, check_samples
from personalize.store import Listing, RecordStore, UserRecord
from personalize.threshold import TailFit, threshold_at_far
from personalize.timing import enrollment_seconds, time_enrollments
from personalize.tree import GalleryTree, Match, RoutedClassifier, flat_search, tree_search

__all__ = [
    "DEFAULT_FAR",
    "NO_TRAINING",
    "Artifact",
    "ArtifactError",
    "Consent",
    "Continual",
    "ContinualConfig",
    "Decision",
    "Device",
    "EnrollmentError",
    "EnrollmentReport",
    "FileKeyStore",
    "GalleryTree",
    "Identification",
    "KeyStore",
    "Listing",
    "Match",
    "MatchConfig",
    "MemoryKeyStore",
    "Offload",
    "OffloadError",
    "PersonalizeError",
    "QualityError",
    "RecordStore",
    "RoutedClassifier",
    "SensorDpiError",
    "SgdConfig",
    "StoreError",
    "TailFit",
    "TrustError",
    "UnknownUserError",
    "UserRecord",
    "check_image",
    "check_samples",
    "default_match",
    "enrollment_seconds",
    "flat_search",
    "install",
    "key_dir",
    "load_artifact",
    "migrate_store",
    "threshold_at_far",
    "time_enrollments",
    "tree_search",
]
