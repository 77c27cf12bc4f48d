"""A model folder from someone else holds no field the package does not know: `preprocessor_config.json`'s keys are the
contract's fields and the ones transformers writes, nothing more (the image processor's base class would set any
other as an attribute: `"do_normalize": false` silently, `"rgb_pixels": 1` in place of a method)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from transformers import AutoImageProcessor
from transformers.image_processing_utils import INIT_SERVICE_KWARGS

from translandseg_hf import TransLandSegModel
from translandseg_hf.contract_fields import DEFAULTS, PREPROCESSOR_CONFIG
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.saved_contract import TRANSFORMERS_FIELDS, load_contract, model_contract


def with_fields(model_dir, tmp_path, **fields):
    """A copy of a saved model whose contract gained `fields`."""
    folder = tmp_path / "stranger"
    shutil.copytree(model_dir, folder)
    path = folder / PREPROCESSOR_CONFIG
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return folder


PLANTED = [
    ({"do_normalize": False}, "do_normalize"),  # the base class's step switch: would skip SAM's normalisation
    ({"rgb_pixels": 1}, "rgb_pixels"),  # a method's name: predict would call an int
    ({"do_resize": False, "zz_note": "x"}, "do_resize, zz_note"),  # every unknown key, sorted
]


@pytest.mark.parametrize("fields, named", PLANTED, ids=["do_normalize", "method", "two"])
def test_an_unknown_key_is_refused_naming_the_file_and_the_key(model_dir, tmp_path, fields, named):
    folder = with_fields(model_dir, tmp_path, **fields)
    message = re.escape(f"{folder / PREPROCESSOR_CONFIG}: unknown field(s) {named}:")
    with pytest.raises(ValueError, match=message):
        TransLandSegModel.from_pretrained(folder)
    with pytest.raises(ValueError, match=message):
        model_contract(folder)  # `translandseg stack`'s loader, without torch


def test_auto_image_processor_refuses_an_unknown_key_too(model_dir, tmp_path):
    folder = with_fields(model_dir, tmp_path, rgb_pixels=1)
    with pytest.raises(ValueError, match=re.escape("unknown field(s) rgb_pixels (in preprocessor_config.json")):
        AutoImageProcessor.from_pretrained(folder)
    with pytest.raises(ValueError, match=re.escape("unknown field(s) do_normalize")):
        TransLandSegImageProcessor(do_normalize=False)


def test_a_folder_saved_by_the_package_loads_with_only_known_keys(model_dir, tmp_path):
    saved = json.loads((model_dir / PREPROCESSOR_CONFIG).read_text())
    assert set(saved) <= set(DEFAULTS) | set(TRANSFORMERS_FIELDS)
    assert saved["image_processor_type"] == "TransLandSegImageProcessor"
    model = TransLandSegModel.from_pretrained(model_dir)
    model.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / PREPROCESSOR_CONFIG).read_text()) == saved
    assert AutoImageProcessor.from_pretrained(model_dir).to_dict() == model.image_processor.to_dict()
    assert model.image_processor.do_normalize is True and callable(model.image_processor.rgb_pixels)


def test_the_key_older_transformers_wrote_still_loads(model_dir, tmp_path):
    folder = with_fields(model_dir, tmp_path, processor_class="SamProcessor")
    assert load_contract(folder) == load_contract(model_dir)
    assert set(TRANSFORMERS_FIELDS) == set(INIT_SERVICE_KWARGS)  # the names saved_contract keeps without transformers
