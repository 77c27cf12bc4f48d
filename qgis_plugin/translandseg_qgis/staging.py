"""Where the command writes and how its files reach the destinations a user chose: a private folder beside them, then
moves. A run that fails or is canceled takes back every file it moved, so no destination holds a partial result.

Pure Python (no qgis import)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class StagedOutputs:
    """`with StagedOutputs(folder) as staged:` the command writes into `staged.folder`; `deliver` moves a file to its
    destination. Leaving the block removes the folder and, on an exception, every delivered file and made folder."""

    def __init__(self, near: str):
        self.near = Path(near)
        self.folder: Path = Path()
        self.delivered: list[Path] = []
        self.made_folders: list[Path] = []

    def __enter__(self) -> "StagedOutputs":
        self.make_parents(self.near / "x")
        self.folder = Path(tempfile.mkdtemp(prefix=".translandseg-", dir=self.near))
        return self

    def __exit__(self, kind, error, traceback) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if kind is not None:
            self.take_back()

    def find(self, suffix: str) -> Path:
        """The one file the command wrote whose name ends with `suffix` (`_probability.tif`)."""
        found = sorted(self.folder.glob(f"*{suffix}"))
        if len(found) != 1:
            names = ", ".join(sorted(path.name for path in self.folder.iterdir())) or "nothing"
            raise FileNotFoundError(f"{self.folder}: expected one *{suffix} from translandseg, found {names}")
        return found[0]

    def deliver(self, staged: Path, destination: str, keep: bool = False) -> Path:
        """Move (with `keep`: copy) `staged` to `destination`, replacing what is there, as Processing outputs do."""
        target = Path(destination)
        self.make_parents(target)
        self.delivered.append(target)
        (shutil.copyfile if keep else shutil.move)(str(staged), str(target))
        return target

    def deliver_rest(self, folder: str, skip: frozenset = frozenset()) -> list[Path]:
        """Move every staged file but those in `skip` into `folder`."""
        return [self.deliver(path, str(Path(folder) / path.name)) for path in sorted(self.folder.iterdir())
                if path.is_file() and path not in skip]

    def make_parents(self, target: Path) -> None:
        missing = [parent for parent in target.parents if not parent.exists()]
        os.makedirs(target.parent, exist_ok=True)
        self.made_folders += missing

    def take_back(self) -> None:
        for path in reversed(self.delivered):
            path.unlink(missing_ok=True)
        for folder in self.made_folders:  # innermost first: `parents` lists them so
            try:
                folder.rmdir()
            except OSError:
                pass
