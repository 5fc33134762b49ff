"""The EC2 actions, one module per resource family. Importing this package registers them."""

from clc.api import images, keypairs, security_groups, tags, zones  # noqa: F401
