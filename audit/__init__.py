"""audit: see docs/architecture.md. Not built yet: only the command-line placeholder exists."""

__all__: list[str] = []
