"""A model's saved input contract, loaded once: read safely, brought up to today's form, checked, as a plain dict
(no torch, so `translandseg stack` stays light). Every form saved before today is filled in here and nowhere else:
- a folder without `preprocessor_config.json` (saved before models recorded their input): 8-bit RGB, bands 1,2,3,
  tiles of the input side, with a warning;
- a Landslide4Sense contract saved before contracts named their sensor: the dataset's sensor bands and divisors.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Union

from .contract_fields import DEFAULTS, PREPROCESSOR_CONFIG, check, checked, coerce
from .geo.sentinel2.bands import landslide4sense_channels, landslide4sense_source
from .hub import PathOrRepoId, read_json_config, resolve_model_folder


def load_contract(folder: Union[str, os.PathLike], input_size: Optional[int] = None) -> dict:
    """The contract saved in a model folder, as the keyword arguments of `TransLandSegImageProcessor`. A folder
    without one gets the contract assumed for models saved before contracts were, when `input_size` is given.
    A ValueError reads "FOLDER/preprocessor_config.json: problem" (naming the field where one is wrong)."""
    path = Path(folder) / PREPROCESSOR_CONFIG
    if input_size is not None and not path.is_file():
        return before_contracts(input_size, folder)
    values = read_json_config(path)  # size-capped, no recursion bomb: a folder may be someone else's
    try:
        refuse_unknown_fields(values)
        fields = upgraded(coerce(values))
        check(fields)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error
    return fields


# What transformers writes beside the contract's fields (`image_processor_type`; `processor_class` from versions that
# saved it): `transformers.image_processing_utils.INIT_SERVICE_KWARGS`, named here without importing transformers.
TRANSFORMERS_FIELDS = ("processor_class", "image_processor_type")


def refuse_unknown_fields(values: dict) -> None:
    """A key that is neither a contract field nor transformers' own is refused by name: the image processor's base
    class would set it as an attribute, so `"do_normalize": false` would switch off SAM's normalisation silently
    and `"rgb_pixels": 1` would replace a method."""
    unknown = sorted(set(values) - set(DEFAULTS) - set(TRANSFORMERS_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}: a contract holds only {', '.join(DEFAULTS)} "
                         f"(and transformers' {', '.join(TRANSFORMERS_FIELDS)}); remove them.")


def model_contract(path_or_repo_id: PathOrRepoId) -> dict:
    """The contract of a saved model (a folder or a Hub repository, read from the cache when offline), loaded
    without torch or transformers: `translandseg stack` needs only these fields."""
    folder = resolve_model_folder(path_or_repo_id, "a saved landslide model", required=[PREPROCESSOR_CONFIG])
    return load_contract(folder)


def upgraded(fields: dict) -> dict:
    """Coerced contract fields in today's form: a Landslide4Sense contract saved before contracts named their sensor
    gets the dataset's (`landslide4sense_channels` recognises one by its scaling, patch side and resolution)."""
    if fields.get("sensor") is not None or fields.get("sensor_bands") is not None:
        return fields
    channels = landslide4sense_channels(fields)
    return fields if channels is None else {**fields, **landslide4sense_source(channels)}


def before_contracts(input_size: int, folder) -> dict:
    """The contract assumed for a model saved before contracts were: RGB, no scaling, tiles of the input side."""
    warnings.warn(f"{folder} has no {PREPROCESSOR_CONFIG} (saved before models recorded their input): assuming "
                  f"bands 1,2,3 as 8-bit RGB and tiles of {input_size} px; pass --bands/--scale if that is wrong.",
                  UserWarning, stacklevel=4)
    return checked({"input_size": input_size})
