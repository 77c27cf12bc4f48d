"""What an inventory is built from: one mapped date (a `translandseg predict` output set and, where it was made from
one, the `imagery` folder of its composite) and what is known of the event.

A predictions folder holds STEM_probability.tif (float32 0-1, NaN nodata), STEM_mask.tif and, with --tta,
STEM_uncertainty.tif. An imagery folder holds composite.tif (bands named by the model's channels), source.tif (the
index in imagery.json["scenes"] of the scene each pixel came from, 65535 where none) and imagery.json."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]
PROBABILITY, MASK, UNCERTAINTY = "_probability.tif", "_mask.tif", "_uncertainty.tif"  # inference.scene's suffixes
IMAGERY_FILES = ("composite.tif", "source.tif", "imagery.json")
TRIGGERS = ("earthquake", "rainfall", "snowmelt", "unknown")


def iso_date(text: Optional[str], what: str) -> Optional[str]:
    """`text` as an ISO date (YYYY-MM-DD), or a ValueError naming `what`."""
    if text is None:
        return None
    try:
        return datetime.date.fromisoformat(str(text)).isoformat()
    except ValueError:
        raise ValueError(f"{what} {text!r}: give a date as YYYY-MM-DD.") from None


@dataclass(frozen=True)
class MappedDate:
    """One date's maps: the probability raster (the grid everything is read onto), its uncertainty (with --tta), the
    imagery folder it was mapped from (dates, scene ids, NDVI), the raster mapped (NDVI where there is no imagery
    folder) and a user-given ISO date (where there is no imagery.json)."""

    probability: Path
    uncertainty: Optional[Path] = None
    imagery: Optional[Path] = None
    image: Optional[Path] = None
    date: Optional[str] = None

    @classmethod
    def from_folder(cls, predictions_dir: PathLike, imagery_dir: Optional[PathLike] = None,
                    date: Optional[str] = None, image: Optional[PathLike] = None) -> "MappedDate":
        """The one STEM_probability.tif of `predictions_dir` (refusing none or several, naming them), its
        uncertainty beside it, and `imagery_dir` (default: an `imagery` folder in or beside a composite's maps)."""
        folder = Path(predictions_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder of predictions (a `translandseg predict` output).")
        found = sorted(p for p in folder.glob(f"*{PROBABILITY}") if not p.name.startswith("."))
        if not found:
            raise FileNotFoundError(f"{folder}: no *{PROBABILITY} in it; give the folder `translandseg predict` "
                                    "wrote its maps to.")
        if len(found) > 1:
            raise ValueError(f"{folder}: {len(found)} probability maps ({', '.join(p.name for p in found)}); an "
                             "inventory is built from one mapped raster per date: give a folder holding one.")
        probability = found[0]
        stem = probability.name[: -len(PROBABILITY)]
        uncertainty = folder / f"{stem}{UNCERTAINTY}"
        imagery = Path(imagery_dir) if imagery_dir is not None else default_imagery(folder, stem)
        if imagery is not None:
            check_imagery(imagery)
        return cls(probability, uncertainty if uncertainty.is_file() else None, imagery,
                   Path(image) if image is not None else None, iso_date(date, "date"))

    @property
    def mask(self) -> Path:
        """STEM_mask.tif beside the probability (the model's threshold applied by `predict`)."""
        return self.probability.with_name(self.probability.name[: -len(PROBABILITY)] + MASK)

    def imagery_file(self, name: str) -> Optional[Path]:
        return None if self.imagery is None else self.imagery / name

    def scenes(self) -> list[dict]:
        """imagery.json's scenes (each with its index, id, datetime, platform), [] without an imagery folder; read
        with the bounded JSON reader and checked (`checked_scenes`): a file made by hand or by another tool must
        not put anything but text into the layers' fields."""
        if self.imagery is None:
            return []
        from ..hub import read_json_config

        path = self.imagery / "imagery.json"
        return checked_scenes(read_json_config(path).get("scenes", []), path)

    def known_dates(self, which: str) -> list[tuple[datetime.date, str]]:
        """Every date known of this date's images, each with where it comes from: the used scenes' days (UTC) and
        the user-given date (a scene of null datetime, a local product's, has none)."""
        path = None if self.imagery is None else self.imagery / "imagery.json"
        known = [(scene_day(scene), f"{path} scene {scene['id']}") for scene in self.scenes()
                 if scene.get("used", True) and scene["datetime"] is not None]
        if self.date is not None:
            known.append((datetime.date.fromisoformat(self.date), f"the {which}-event date given"))
        return known


def checked_scenes(scenes, path: Path) -> list[dict]:
    """imagery.json's scenes, refused (ValueError naming `path`) unless a list of objects, each with a whole
    `index` >= 0, a text `id`, an ISO 8601 `datetime` or null (`composite` of local product files writes null: their
    date is not read from them) and, where present, a text (or null) `platform`. A scene of null datetime has no date:
    the landslides under it get the date given for the image (--post_date, --pre_date), else null."""
    if not isinstance(scenes, list):
        raise ValueError(f"{path}: \"scenes\" is a JSON {type(scenes).__name__}, not a list of scenes.")
    for number, scene in enumerate(scenes):
        where = f"{path}: scene {number}"
        if not isinstance(scene, dict):
            raise ValueError(f"{where} is a JSON {type(scene).__name__}, not an object.")
        index = scene.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"{where}: \"index\" must be a whole number >= 0 (source.tif's value), not {index!r:.60}.")
        if not isinstance(scene.get("id"), str):
            raise ValueError(f"{where}: \"id\" must be text, not {scene.get('id')!r:.60}.")
        if "datetime" not in scene:
            raise ValueError(f"{where}: no \"datetime\" (ISO 8601 text, or null where the scene's date is unknown).")
        for name in ("datetime", "platform"):
            if not isinstance(scene.get(name), (str, type(None))):
                raise ValueError(f"{where}: \"{name}\" must be text or null, not {scene.get(name)!r:.60}.")
        if scene.get("datetime") is not None:
            scene_day(scene, where)
    return scenes


def scene_day(scene: dict, where: str = "imagery.json") -> datetime.date:
    """The UTC day of a scene's ISO 8601 `datetime` (a date alone is that day)."""
    try:
        when = datetime.datetime.fromisoformat(scene["datetime"])
    except ValueError:
        raise ValueError(f"{where}: \"datetime\" {scene['datetime']!r:.60} is not an ISO 8601 date and time.") from None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return when.date()


def default_imagery(folder: Path, stem: str) -> Optional[Path]:
    """The imagery folder of a composite's maps: `predict --aoi` writes OUTPUT/imagery/ beside its maps, `event`
    writes DATE/imagery/ beside DATE/predictions/; None for maps of any other raster."""
    if stem != "composite":
        return None
    for candidate in (folder / "imagery", folder.parent / "imagery"):
        if all((candidate / name).is_file() for name in IMAGERY_FILES):
            return candidate
    return None


def check_imagery(folder: Path) -> None:
    missing = [name for name in IMAGERY_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: no {', '.join(missing)} in it; give the folder `translandseg imagery` "
                                "wrote (composite.tif, source.tif, imagery.json).")


@dataclass(frozen=True)
class EventInfo:
    """The event the inventory is of: its name, ISO date and trigger (one of TRIGGERS)."""

    name: str = ""
    date: Optional[str] = None
    trigger: str = "unknown"
    TRIGGERS = TRIGGERS

    def __post_init__(self):
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger {self.trigger!r}: choose one of {', '.join(TRIGGERS)}.")
        object.__setattr__(self, "date", iso_date(self.date, "event date"))

    def record(self) -> dict:
        return {"name": self.name, "date": self.date, "trigger": self.trigger}
