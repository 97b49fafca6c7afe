"""stackops: deploy, run and upgrade OpenStack clouds on Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stackops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
