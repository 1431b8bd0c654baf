"""linkage: Fellegi-Sunter linkage on encoded fields. Not built yet (docs/architecture.md)."""

__all__: list[str] = []
