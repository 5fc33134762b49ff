
# What the AWS CLI reads as its config and credentials files in tests: an empty file of ours,
# not /dev/null (one run saw /dev/null replaced by a regular file on a shared machine).
from pathlib import Path as _Path

EMPTY_AWS_FILE = str(_Path(__file__).with_name("aws-empty.cfg"))
