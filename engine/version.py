"""Package version and the version of the per-run result format."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("epmsweep")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

RESULT_FORMAT_VERSION = 4
"""Bumped whenever the content or layout of ``simulate``'s output changes: stored runs of an
older format are recomputed, never mixed with new ones."""
