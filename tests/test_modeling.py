"""TransLandSegModel: adapter-only files, save/load after training, Hub ids offline, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from huggingface_hub import ModelCard
from transformers import SamModel

from conftest import put_in_hub_cache, tiny_atl

from translandseg_hf import TransLandSegModel
from translandseg_hf.sam_configs import tiny_sam_config


def train_a_few_steps(model, pixel_values, labels, steps=3):
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        model(pixel_values, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.mark.parametrize("preset", ["translandseg", "translandseg-6", "translandseg-official"])
def test_save_then_load_gives_the_same_logits(tmp_path, preset, tiny_sam, pixel_values, labels):
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))
    train_a_few_steps(model, pixel_values, labels)
    with torch.no_grad():
        expected = model(pixel_values).logits
    model.save_pretrained(tmp_path)

    with safe_open(str(tmp_path / "adapter_model.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
        stored = sum(handle.get_slice(key).get_shape().numel() if hasattr(handle.get_slice(key).get_shape(), "numel")
                     else int(np.prod(handle.get_slice(key).get_shape())) for key in keys)
    for key in keys:
        assert ".atl_adapters." in key or ".mask_decoder." in key or ".no_mask_embed." in key, key
    # trainable tensors, and PEFT's whole decoder copy: its parts frozen in prompt-free mode are saved as they are
    frozen_copies = sum(p.numel() for n, p in model.named_parameters() if ".modules_to_save." in n and not p.requires_grad)
    assert stored == model.parameter_counts()["trainable"] + frozen_copies

    loaded = TransLandSegModel.from_pretrained(tmp_path)  # the in-memory base was saved beside the adapter
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, expected)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_model_card_has_hub_metadata(tmp_path, tiny_sam):
    model = TransLandSegModel.from_sam(tiny_sam)
    model.base_model_name_or_path = "facebook/sam-vit-large"
    model.save_pretrained(tmp_path, model_card_kwargs=dict(datasets=["bijie"]))
    card = ModelCard.load(tmp_path / "README.md")
    assert (card.data.library_name, card.data.base_model, card.data.pipeline_tag) == (
        "peft", "facebook/sam-vit-large", "image-segmentation")  # tests/test_card_metadata.py: the rest of it
    assert card.data.datasets is None and "translandseg-hf" in card.data.tags and "f1" in card.data.metrics
    assert "https://huggingface.co/facebook/sam-vit-large" in card.text and "import translandseg_hf" in card.text


def test_model_card_of_a_bundled_or_local_base_links_to_no_hub_page(tmp_path, tiny_sam):
    TransLandSegModel.from_sam(tiny_sam).save_pretrained(tmp_path / "bundled")
    card = ModelCard.load(tmp_path / "bundled" / "README.md")
    assert card.data.base_model is None and "bundled beside the adapter, in `base_model/`" in card.text
    tiny_sam.save_pretrained(tmp_path / "sam")
    TransLandSegModel.from_sam(str(tmp_path / "sam")).save_pretrained(tmp_path / "local")
    card = ModelCard.load(tmp_path / "local" / "README.md")
    assert card.data.base_model is None and "huggingface.co/" + str(tmp_path) not in card.text
    assert f"local path `{(tmp_path / 'sam').resolve()}`" in card.text and "pass `base_model=`" in card.text


def test_from_sam_and_save_pretrained_leave_the_callers_atl_config_alone(tmp_path, tiny_sam):
    atl_config = tiny_atl("translandseg")
    before = atl_config.to_dict()
    model = TransLandSegModel.from_sam(tiny_sam, atl_config)
    assert model.atl_config is not atl_config and atl_config.to_dict() == before
    assert model.atl_config.image_size == 64 and atl_config.image_size != 64
    live = model.atl_config.to_dict()
    model.save_pretrained(tmp_path / "bundled")  # an in-memory base: bundled, the saved config names base_model/
    assert model.atl_config.to_dict() == live and model.base_model_name_or_path is None
    assert atl_config.to_dict() == before


def test_a_bundled_adapter_config_is_written_as_peft_writes_it(tmp_path, tiny_sam):
    """Sorted keys, indent 2, no final newline (PeftConfig.save_pretrained), whether the base was in memory or a
    folder bundled on request: the same bytes but for the folder, naming its base_model/."""
    tiny_sam.save_pretrained(tmp_path / "sam")
    TransLandSegModel.from_sam(tiny_sam).save_pretrained(tmp_path / "memory")
    named = TransLandSegModel.from_sam(str(tmp_path / "sam"))
    named.bundle_base = True
    named.save_pretrained(tmp_path / "named")
    assert named.base_model_name_or_path == str((tmp_path / "sam").resolve())  # the live config still names it
    written = (tmp_path / "memory" / "adapter_config.json").read_text()
    values = json.loads(written)
    assert written == json.dumps(values, indent=2, sort_keys=True) and not written.endswith("\n")
    memory, named_folder = (tmp_path / "memory").resolve(), (tmp_path / "named").resolve()
    # by absolute path, which PEFT's AutoPeftModel loads from any directory (tests/atl/test_peft_integration.py)
    assert values["base_model_name_or_path"] == str(memory / "base_model") and values["inference_mode"] is True
    assert (named_folder / "adapter_config.json").read_text() == written.replace(str(memory), str(named_folder))


def test_in_memory_base_without_saved_base_needs_base_model(tmp_path, tiny_sam, pixel_values):
    model = TransLandSegModel.from_sam(tiny_sam)
    model.peft_model.save_pretrained(str(tmp_path))  # PEFT's own save: the adapter alone, naming no base
    with pytest.raises(ValueError, match="was made from an in-memory SamModel and names no base: pass base_model="):
        TransLandSegModel.from_pretrained(tmp_path)
    torch.manual_seed(0)
    loaded = TransLandSegModel.from_pretrained(tmp_path, base_model=SamModel(tiny_sam_config()))
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, model(pixel_values).logits)


def test_local_base_folder_is_recorded_and_reloaded(tmp_path, tiny_sam, pixel_values):
    tiny_sam.save_pretrained(tmp_path / "sam")
    model = TransLandSegModel.from_sam(str(tmp_path / "sam"))
    model.save_pretrained(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((tmp_path / "sam").resolve())
    assert not (tmp_path / "adapter" / "base_model").exists()
    with torch.no_grad():
        torch.testing.assert_close(
            TransLandSegModel.from_pretrained(tmp_path / "adapter")(pixel_values).logits, model(pixel_values).logits
        )


def test_hub_ids_load_offline_from_the_cache(tmp_path, tiny_sam, pixel_values, labels):
    hf_home = tmp_path / "hf_home"
    tiny_sam.save_pretrained(tmp_path / "sam")
    put_in_hub_cache(hf_home / "hub", "landslide-lab/tiny-sam", tmp_path / "sam")
    model = TransLandSegModel.from_sam(tiny_sam)
    model.base_model_name_or_path = "landslide-lab/tiny-sam"  # as if built from the Hub id
    train_a_few_steps(model, pixel_values, labels)
    model.save_pretrained(tmp_path / "adapter")
    put_in_hub_cache(hf_home / "hub", "landslide-lab/tiny-translandseg", tmp_path / "adapter")
    with torch.no_grad():
        torch.save({"x": pixel_values, "logits": model(pixel_values).logits}, tmp_path / "expected.pt")

    script = textwrap.dedent(
        f"""
        import torch
        from translandseg_hf import TransLandSegModel
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        model = TransLandSegModel.from_pretrained("landslide-lab/tiny-translandseg")
        assert model.base_model_name_or_path == "landslide-lab/tiny-sam", model.base_model_name_or_path
        with torch.no_grad():
            torch.testing.assert_close(model(expected["x"]).logits, expected["logits"])
        print("HUB-OK")
        """
    )
    environment = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    environment.pop("HF_HUB_CACHE", None)
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert result.returncode == 0 and "HUB-OK" in result.stdout, result.stderr[-3000:]


def test_predict_returns_masks_at_each_image_size(tiny_sam):
    model = TransLandSegModel.from_sam(tiny_sam)
    images = [Image.new("RGB", (70, 61), (120, 80, 40)), np.full((100, 50, 3), 200, np.uint8)]
    masks = model.predict(images)
    assert [mask.shape for mask in masks] == [(61, 70), (100, 50)]
    assert all(mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1} for mask in masks)
    probabilities = model.predict_proba(images)
    for mask, probability in zip(masks, probabilities):
        np.testing.assert_array_equal(mask, (probability > 0.5).astype(np.uint8))


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 64, 64), (3, 64, 64)])
def test_wrong_pixel_values_shape_is_refused(tiny_sam, shape):
    model = TransLandSegModel.from_sam(tiny_sam)
    with pytest.raises(ValueError, match=r"\(batch, 3, 64, 64\)"):
        model(torch.zeros(shape))


def test_adapter_for_another_architecture_names_both_hidden_sizes(tmp_path, tiny_sam):
    TransLandSegModel.from_sam(tiny_sam).save_pretrained(tmp_path)
    other = SamModel(tiny_sam_config(hidden_size=48))
    with pytest.raises(ValueError, match="hidden size 32.*hidden size 48"):
        TransLandSegModel.from_pretrained(tmp_path, base_model=other)


def test_truncated_adapter_file_is_named(tmp_path, tiny_sam):
    TransLandSegModel.from_sam(tiny_sam).save_pretrained(tmp_path)
    weights = tmp_path / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"adapter_model.safetensors is not a readable safetensors file \(truncated"):
        TransLandSegModel.from_pretrained(tmp_path)


def drop_middle_adapter(tensors: dict) -> dict:
    return {key: t for key, t in tensors.items() if ".atl_adapters.middle.1." not in key}


def add_a_tensor(tensors: dict) -> dict:
    return {**tensors, "base_model.model.vision_encoder.extra.weight": torch.zeros(2)}


def reshape_a_tensor(tensors: dict) -> dict:
    key = "base_model.model.vision_encoder.atl_adapters.down.weight"
    return {**tensors, key: tensors[key][:-1]}


MIDDLE_1 = r"'base_model\.model\.vision_encoder\.atl_adapters\.middle\.1\.0\.linear\.bias', '[^']+weight'"
DAMAGED_ADAPTERS = [  # (how adapter_model.safetensors is changed, the error expected after its path)
    (drop_middle_adapter, rf"tensors {MIDDLE_1} are missing: the file is incomplete or was saved for another model"),
    (add_a_tensor, r"tensor 'base_model\.model\.vision_encoder\.extra\.weight' is unexpected: the file is"),
    (reshape_a_tensor, r"tensor 'base_model\.model\.vision_encoder\.atl_adapters\.down\.weight' has shape \[\d+, 32\], "
                       r"the model's \[\d+, 32\]: the file is incomplete"),
]


def damage_adapter(folder, damage) -> None:
    weights = folder / "adapter_model.safetensors"
    save_file(damage(load_file(str(weights))), str(weights))


@pytest.mark.parametrize("damage, message", DAMAGED_ADAPTERS)
def test_an_adapter_file_of_other_tensors_is_refused_by_load_weights(tmp_path, tiny_sam, damage, message):
    """The Trainer resumes and loads the best checkpoint with `load_weights`: PEFT loaded such files silently."""
    model = TransLandSegModel.from_sam(tiny_sam)
    model.save_pretrained(tmp_path)
    damage_adapter(tmp_path, damage)
    before = {name: p.clone() for name, p in model.named_parameters()}
    with pytest.raises(ValueError, match=rf"{tmp_path}/adapter_model\.safetensors: {message}"):
        model.load_weights(tmp_path)
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())  # nothing half-loaded


@pytest.mark.parametrize("damage, message", DAMAGED_ADAPTERS[:2])
def test_an_adapter_file_of_other_tensors_is_refused_by_from_pretrained(tmp_path, tiny_sam, damage, message):
    """PEFT only warned of missing adapter keys, and the layers kept fresh weights (other logits)."""
    TransLandSegModel.from_sam(tiny_sam).save_pretrained(tmp_path)
    damage_adapter(tmp_path, damage)
    with pytest.raises(ValueError, match=rf"{tmp_path}/adapter_model\.safetensors: {message}"):
        TransLandSegModel.from_pretrained(tmp_path)


def test_a_checkpoint_of_another_preset_is_refused_by_load_weights(tmp_path, tiny_sam):
    TransLandSegModel.from_sam(SamModel(tiny_sam_config()), tiny_atl("translandseg-1")).save_pretrained(tmp_path)
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg"))
    message = (r"adapter_model\.safetensors: tensors ('[^']+\.middle\.[01]\.0\.linear\.[a-z]+'(, )?){4} are missing; "
               r"tensors ('[^']+\.middle\.0\.[01]\.[a-z]+\.[a-z]+'(, )?){5} \(and 19 more\) are unexpected: .*saved "
               r"for another model \(another ATL preset")
    with pytest.raises(ValueError, match=message):
        model.load_weights(tmp_path)


def test_missing_adapter_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing-here does not exist \(expected a saved TransLandSegModel\)"):
        TransLandSegModel.from_pretrained(tmp_path / "nothing-here")


def test_push_to_hub_uploads_the_saved_folder(monkeypatch, tiny_sam):
    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            uploaded["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            from types import SimpleNamespace

            uploaded["repo"] = (repo_id, private, exist_ok)
            return SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, commit_message, **options):
            from pathlib import Path

            folder = Path(folder_path)
            uploaded["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            uploaded["card"] = (folder / "README.md").read_text()
            return "https://huggingface.co/landslide-lab/demo/commit/0"

    import huggingface_hub.hub_mixin

    monkeypatch.setattr(huggingface_hub.hub_mixin, "HfApi", FakeApi)
    model = TransLandSegModel.from_sam(tiny_sam)
    model.base_model_name_or_path = "facebook/sam-vit-large"
    url = model.push_to_hub("landslide-lab/demo", private=True, token="hf_test")
    assert url.endswith("/commit/0") and uploaded["token"] == "hf_test"
    assert uploaded["repo"] == ("landslide-lab/demo", True, True)
    assert uploaded["files"] == ["README.md", "adapter_config.json", "adapter_model.safetensors", "config.json",
                                 "preprocessor_config.json"]
    assert 'load_segmentation_model("landslide-lab/demo")' in uploaded["card"]
    assert "base_model: facebook/sam-vit-large" in uploaded["card"]
