"""The S3 operations, one module per resource; each function takes an S3Context and returns
the HTTP response. Dispatch (which function serves which method/path/sub-resource) is in
walrus/dispatch.py."""
