"""The error every reader raises for a file it cannot use, with a message meant for a person."""

from __future__ import annotations

from pathlib import Path


class OctReadError(ValueError):
    """A scan file could not be opened; ``str(error)`` names the file, the problem and what to do."""

    def __init__(self, path: str | Path, problem: str, advice: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.advice = advice
        message = f"{self.path.name}: {problem}"
        if advice:
            message += f" {advice}"
        super().__init__(message)
