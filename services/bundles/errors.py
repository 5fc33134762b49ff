"""What can be wrong with a bundle. Each message is written for the image's StateReason: it
says what failed in words the owner can act on."""

from __future__ import annotations


class BundleError(Exception):
    """The bundle cannot become an image; `reason` says why."""

    code = "Bundle.Invalid"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ManifestError(BundleError):
    code = "Bundle.ManifestInvalid"


class SignatureInvalid(BundleError):
    code = "Bundle.SignatureInvalid"


class DecryptionFailed(BundleError):
    code = "Bundle.DecryptionFailed"


class PartDigestMismatch(BundleError):
    code = "Bundle.PartCorrupt"


class CorruptBundle(BundleError):
    code = "Bundle.Corrupt"
