"""Split schemes: the seeded 70/10/20 default, the TransLandSeg authors' rule, and JSON split files.

A split file written once and reused is what makes results comparable across runs and papers.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io_utils import atomic_write_text
from ._io import DEFAULT_FRACTIONS, DEFAULT_SEED, SPLIT_NAMES, SPLIT_SCHEMES, DatasetError


def split_sizes(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[int]:
    """Every split but the first gets round(fraction * n); the first takes the rest, so none is lost."""
    if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {tuple(fractions)}")
    tail = [round(f * n) for f in fractions[1:]]
    if sum(tail) > n:  # only for tiny n with large fractions
        raise ValueError(f"cannot split {n} samples into fractions {tuple(fractions)}")
    return [n - sum(tail), *tail]


def seeded_split(keys: Sequence[str], seed: int = DEFAULT_SEED) -> dict[str, list[str]]:
    """The `default` scheme: each key goes to train/validation/test by where a seeded hash of its own name falls in
    [0, 1) against the cumulative 70/10/20, so a key's split never depends on which other keys are present. Adding a
    file moves no other file, and Bijie's landslide-only test split lies inside its test split with the non-landslide
    scenes, so a model is never tested on its training images when scored with other data options. (Shuffling the
    whole key list did neither: 81 of the 154 landslide-only test images were training images once the 2003
    non-landslide scenes were added.) Large sets come within about 1% of 70/10/20. A split that `split_sizes` gives
    members but the hashes leave empty (only in sets of a few dozen keys) takes the key whose hash lies nearest its
    range, so small folders still get a validation and a test image; only then does a key depend on the others."""
    positions = {key: _position(key, seed) for key in sorted(set(keys))}
    ranges = _cumulative_ranges(DEFAULT_FRACTIONS)
    splits = {name: [key for key, at in positions.items() if low <= at < high]
              for name, (low, high) in zip(SPLIT_NAMES, ranges)}
    sizes = dict(zip(SPLIT_NAMES, split_sizes(len(positions))))
    for name, (low, high) in zip(SPLIT_NAMES, ranges):
        if sizes[name] and not splits[name]:  # a split keeps its one key unless `split_sizes` gives it none
            donors = [key for other, members in splits.items() if len(members) > min(sizes[other], 1)
                      for key in members]
            nearest = min(donors, key=lambda key: max(low - positions[key], positions[key] - high))
            next(members for members in splits.values() if nearest in members).remove(nearest)
            splits[name].append(nearest)
    return {name: sorted(members) for name, members in splits.items()}


def _position(key: str, seed: int) -> float:
    """A key's place in [0, 1): the first 8 bytes of SHA-256 of the seed and the key, the same on every machine."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _cumulative_ranges(fractions: Sequence[float]) -> list[tuple[float, float]]:
    edges = np.cumsum([0.0, *fractions]).tolist()
    edges[-1] = 1.0 + 1e-12  # every position < 1 falls in the last range despite rounding
    return list(zip(edges[:-1], edges[1:]))


def translandseg_split(keys: Sequence[str], seed: int = DEFAULT_SEED) -> dict[str, list[str]]:
    """The TransLandSeg authors' rule (their train.py): shuffle the indices of the sorted file list
    with `np.random.seed(42)`; the first floor(0.3 N) + 1 are validation, the rest train, no test.
    `keys` must be in the order of the sorted file list."""
    indices = list(range(len(keys)))
    np.random.RandomState(seed).shuffle(indices)  # same stream as np.random.seed(seed); np.random.shuffle
    cut = math.floor(0.3 * len(keys)) + 1
    return {"train": [keys[i] for i in indices[cut:]], "validation": [keys[i] for i in indices[:cut]]}


def assign_splits(
    keys: Sequence[str],
    scheme: str,
    seed: int,
    split_file: str | Path | None,
    data_root: Path,
    aliases: dict[str, list[str]] | None = None,
    warn_train_only: bool = False,
) -> dict[str, str]:
    """Map each key to its split name.

    An existing `split_file` (JSON: split name -> list of ids) defines the split, whatever the
    scheme; otherwise the scheme's split is computed and, if `split_file` is given, written there
    (never inside `data_root`). `aliases` lets a split file name a sample by a shorter id. With
    `warn_train_only`, the "train" scheme warns that it holds nothing out, so nothing is scored.
    """
    if scheme not in SPLIT_SCHEMES:
        raise ValueError(f"split must be one of {SPLIT_SCHEMES}, got {scheme!r}")
    if split_file is not None and Path(split_file).expanduser().is_file():
        return read_split_file(Path(split_file).expanduser(), keys, aliases or {})
    if scheme == "train":
        splits = {"train": list(keys)}
        if warn_train_only:
            warn_nothing_held_out(len(keys))
    elif scheme == "default":
        splits = seeded_split(keys, seed)
    else:
        splits = translandseg_split(keys, seed)
    if split_file is not None:
        write_split_file(Path(split_file).expanduser(), splits, data_root)
    return {key: name for name, members in splits.items() for key in members}


def warn_nothing_held_out(count: int) -> None:
    """Training on everything is a choice, but a silent one scores nothing: say so, and how to ask for a split."""
    warnings.warn(
        f"all {count} samples are in the train split (split scheme 'train'): none is held out, so validation and "
        "test are not scored; split='default' (--split_scheme default in training) gives the seeded 70/10/20 "
        "train/validation/test split",
        stacklevel=3,
    )


def read_split_file(path: Path, keys: Sequence[str], aliases: dict[str, list[str]]) -> dict[str, str]:
    try:
        splits = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(path, f"cannot read the split file as JSON ({exc})") from exc
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise DatasetError(path, "expected a JSON object mapping split name -> list of ids")
    known = set(keys)
    assignment: dict[str, str] = {}
    unknown: list[str] = []
    for name, ids in splits.items():
        if not re.fullmatch(r"\w+(\.\w+)*", name):
            raise DatasetError(path, f"split name {name!r} must be letters, digits and underscores")
        for sample_id in ids:
            key = _resolve_id(str(sample_id), known, aliases, path)
            if key is None:
                unknown.append(str(sample_id))
            elif assignment.setdefault(key, name) != name:
                raise DatasetError(path, f"{sample_id!r} is in both {assignment[key]!r} and {name!r}")
    if unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise DatasetError(path, f"{len(unknown)} id(s) not found in the dataset: {shown}")
    left_out = [key for key in keys if key not in assignment]
    if left_out:
        shown = ", ".join(left_out[:10]) + (" ..." if len(left_out) > 10 else "")
        warnings.warn(f"{path}: {len(left_out)} sample(s) are in no split and are left out: {shown}")
    return assignment


def _resolve_id(sample_id: str, known: set[str], aliases: dict[str, list[str]], path: Path) -> str | None:
    if sample_id in known:
        return sample_id
    candidates = aliases.get(sample_id, [])
    if len(candidates) > 1:
        raise DatasetError(path, f"id {sample_id!r} is ambiguous ({', '.join(candidates)}); use the full key")
    return candidates[0] if candidates else None


def write_split_file(path: Path, splits: dict[str, list[str]], data_root: Path) -> None:
    if path.resolve().is_relative_to(data_root.resolve()):
        raise ValueError(
            f"split_file {path} is inside the dataset folder {data_root}, which may be read-only or "
            "shared; choose a path outside it"
        )
    atomic_write_text(path, json.dumps(splits, indent=1) + "\n")
