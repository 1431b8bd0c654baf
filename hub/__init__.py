"""hub: the data-sharing hub service (aiohttp). ``hub.app.create_app`` builds it; docs/hub.md
describes what is built."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pprl-hub")
except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
