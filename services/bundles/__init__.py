"""Image bundles as euca2ools made them: the image tarred, gzipped, encrypted with AES-128-CBC
under a random key and IV, cut into 10 MiB parts (each with its SHA-1), and described by a
signed `manifest.xml` (version 2007-10-10) that carries the key and IV encrypted under the
cloud's certificate and the user's.

`build_bundle` makes one from an image file; `parse_manifest`, `verify_manifest` and
`unbundle` read one back. Both directions stream: no image is ever held whole in memory."""

from services.bundles.build import BuiltBundle, build_bundle
from services.bundles.errors import (BundleError, CorruptBundle, DecryptionFailed, ManifestError,
                                     PartDigestMismatch, SignatureInvalid)
from services.bundles.manifest import Manifest, ManifestPart, parse_manifest
from services.bundles.unbundle import UnbundledImage, bundle_keys, local_parts, unbundle, verify_manifest

__all__ = ["BuiltBundle", "BundleError", "CorruptBundle", "DecryptionFailed", "Manifest",
           "ManifestError", "ManifestPart", "PartDigestMismatch", "SignatureInvalid",
           "UnbundledImage", "build_bundle", "bundle_keys", "local_parts", "parse_manifest", "unbundle",
           "verify_manifest"]
