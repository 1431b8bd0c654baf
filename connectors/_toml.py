"""Reading TOML configuration files with errors that name the file and line."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TomlSource:
    """A parsed TOML file with its text, so later checks can point at a line."""

    path: Path
    text: str
    data: dict[str, Any]

    def line_of(self, *needles: str) -> int | None:
        """The 1-based line where ``needles`` appear in order (each on the same or a later line)."""
        lines = self.text.splitlines()
        start = 0
        found: int | None = None
        for needle in needles:
            for i in range(start, len(lines)):
                if needle in lines[i].split("#", 1)[0]:
                    found, start = i, i
                    break
            else:
                return found + 1 if found is not None else None
        return found + 1 if found is not None else None

    def where(self, *needles: str) -> str:
        """``file:line`` for the first place the needles appear, or just the file name."""
        line = self.line_of(*needles)
        return f"{self.path}:{line}" if line is not None else str(self.path)


def read_toml(path: Path, error: Callable[[str], Exception]) -> TomlSource:
    """Read and parse ``path``; any failure is raised as ``error(message)``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from None
    return TomlSource(path, text, data)
