"""transformers' routes into a saved landslide model (issue 38, section 2): `pipeline("image-segmentation", ...)` on a
folder and on a Hub id read from the cache, `AutoConfig` / `AutoImageProcessor` / `AutoModel`, the `PreTrainedModel`
attributes, and what loading says without `import translandseg_hf`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import put_in_hub_cache
from PIL import Image
from transformers import SamImageProcessor, SamModel, pipeline

from translandseg_hf import TransLandSegModel
from translandseg_hf.sam_configs import tiny_sam_config

# (name, image, its size as (height, width)): each input kind the pipeline takes
IMAGES = [
    ("pil", Image.new("RGB", (70, 50), (120, 80, 40)), (50, 70)),
    ("uint8 array", np.full((30, 40, 3), 200, np.uint8), (30, 40)),
    ("float array in 0-1", np.random.default_rng(0).random((24, 36, 3)), (24, 36)),
    ("grey array", np.random.default_rng(1).integers(0, 255, (33, 21), dtype=np.uint8), (33, 21)),
]


def expected_segments(model, image):
    """What the pipeline must return, from `model.predict_proba`: the mask at 0.5 and the mean probability in it."""
    probabilities = model.predict_proba([image])[0]
    inside = probabilities > 0.5
    return inside, float(probabilities[inside].mean()) if inside.any() else 0.0


def check_segments(segments, model, image, size):
    assert isinstance(segments, list) and len(segments) == 1
    segment = segments[0]
    assert set(segment) == {"label", "score", "mask"} and segment["label"] == "landslide"
    assert isinstance(segment["mask"], Image.Image) and segment["mask"].mode == "L"
    mask = np.asarray(segment["mask"])
    assert mask.shape == size and set(np.unique(mask)) <= {0, 255}
    inside, score = expected_segments(model, image)
    np.testing.assert_array_equal(mask == 255, inside)
    assert segment["score"] == pytest.approx(score, abs=1e-5)


@pytest.fixture(scope="module")
def loaded(tiny_sam_folder):
    return TransLandSegModel.from_pretrained(tiny_sam_folder)


@pytest.fixture(scope="module")
def segmenter(tiny_sam_folder):
    return pipeline("image-segmentation", model=str(tiny_sam_folder), device="cpu")


@pytest.mark.parametrize("name, image, size", IMAGES, ids=[row[0] for row in IMAGES])
def test_the_pipeline_maps_one_image_of_each_kind(segmenter, loaded, name, image, size):
    check_segments(segmenter(image), loaded, image, size)


def test_the_pipeline_maps_a_batch_and_a_path(segmenter, loaded, tmp_path):
    Image.fromarray(np.full((40, 64, 3), (90, 140, 30), np.uint8)).save(tmp_path / "scene.png")
    images = [image for _, image, _ in IMAGES] + [str(tmp_path / "scene.png")]
    results = segmenter(images)
    assert len(results) == len(images)
    for (name, image, size), segments in zip(IMAGES, results):
        check_segments(segments, loaded, image, size)
    check_segments(results[-1], loaded, Image.open(tmp_path / "scene.png"), (40, 64))


def test_mask_threshold_sets_the_probability_cut(segmenter, loaded):
    image = IMAGES[0][1]
    probabilities = loaded.predict_proba([image])[0]
    cut = float(np.median(probabilities))
    mask = np.asarray(segmenter(image, mask_threshold=cut)[0]["mask"])
    np.testing.assert_array_equal(mask == 255, probabilities > cut)


def test_other_segmentation_models_keep_transformers_pipeline(segmenter):
    from transformers.pipelines import PIPELINE_REGISTRY
    from transformers.pipelines.image_segmentation import ImageSegmentationPipeline

    task = PIPELINE_REGISTRY.supported_tasks["image-segmentation"]
    assert issubclass(task["impl"], ImageSegmentationPipeline)
    assert [c.__name__ for c in task["pt"][:2]] == ["AutoModelForImageSegmentation", "AutoModelForSemanticSegmentation"]
    assert task["default"]["model"][0] == "facebook/detr-resnet-50-panoptic"


def test_a_hub_id_from_the_cache_runs_in_the_pipeline(tmp_path):
    """A published adapter names its base by Hub id; offline, both come from the cache (a fresh interpreter reads
    HF_HOME, as a user's would)."""
    hf_home = tmp_path / "hf_home"
    torch.manual_seed(0)
    sam = SamModel(tiny_sam_config()).eval()
    sam.save_pretrained(tmp_path / "sam")
    SamImageProcessor().save_pretrained(tmp_path / "sam")  # as SAM repositories hold it (the pipeline loads it)
    put_in_hub_cache(hf_home / "hub", "landslide-lab/tiny-sam", tmp_path / "sam")
    model = TransLandSegModel.from_sam(sam)
    model.base_model_name_or_path = "landslide-lab/tiny-sam"
    model.save_pretrained(tmp_path / "adapter")
    put_in_hub_cache(hf_home / "hub", "landslide-lab/tiny-translandseg", tmp_path / "adapter")
    image = np.random.default_rng(2).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "expected.npy", model.predict_proba([image])[0])
    script = textwrap.dedent(f"""
        import numpy as np
        import translandseg_hf
        from transformers import pipeline
        image, expected = np.load({str(tmp_path / "image.npy")!r}), np.load({str(tmp_path / "expected.npy")!r})
        segmenter = pipeline("image-segmentation", model="landslide-lab/tiny-translandseg", device="cpu")
        single, batch = segmenter(image), segmenter([image, image])
        assert len(batch) == 2
        for segments in (single, *batch):
            (segment,) = segments
            assert segment["label"] == "landslide", segment
            np.testing.assert_array_equal(np.asarray(segment["mask"]) == 255, expected > 0.5)
            assert abs(segment["score"] - expected[expected > 0.5].mean()) < 1e-5
        print("HUB-PIPELINE-OK")
        """)
    environment = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    environment.pop("HF_HUB_CACHE", None)
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert result.returncode == 0 and "HUB-PIPELINE-OK" in result.stdout, result.stderr[-3000:]


# ------------------------------------------------------------------------------------------ Auto classes
def test_auto_classes_recognise_a_saved_folder(tiny_sam_folder, loaded, pixel_values):
    from transformers import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageSegmentation,
                              AutoModelForSemanticSegmentation)

    from translandseg_hf import TransLandSegImageProcessor
    from translandseg_hf.configuration_translandseg import TransLandSegConfig

    config = AutoConfig.from_pretrained(tiny_sam_folder)
    assert isinstance(config, TransLandSegConfig)
    assert (config.image_size, config.num_channels, config.id2label) == (64, 3, {0: "background", 1: "landslide"})
    processor = AutoImageProcessor.from_pretrained(tiny_sam_folder)
    assert isinstance(processor, TransLandSegImageProcessor) and processor.to_dict() == loaded.image_processor.to_dict()
    for auto_class in (AutoModel, AutoModelForImageSegmentation, AutoModelForSemanticSegmentation):
        model = auto_class.from_pretrained(tiny_sam_folder)
        assert isinstance(model, TransLandSegModel), auto_class
        with torch.no_grad():
            torch.testing.assert_close(model(pixel_values).logits, loaded(pixel_values).logits)


def test_other_auto_classes_refuse_in_transformers_words(tiny_sam_folder):
    from transformers import AutoModelForMaskGeneration

    with pytest.raises(ValueError, match=r"Unrecognized configuration class .*TransLandSegConfig"):
        AutoModelForMaskGeneration.from_pretrained(tiny_sam_folder)


def test_auto_model_takes_a_dtype(tiny_sam_folder):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_sam_folder, dtype=torch.float64)
    assert model.dtype == torch.float64


def test_the_model_answers_as_a_pretrained_model_does(loaded, tiny_sam_folder):
    counts = loaded.parameter_counts()
    assert loaded.num_parameters() == counts["total"] and loaded.num_parameters(only_trainable=True) == counts[
        "trainable"]
    assert loaded.device == torch.device("cpu") and loaded.dtype == torch.float32
    assert loaded.config.to_dict() == type(loaded.config).from_pretrained(tiny_sam_folder).to_dict()
    assert loaded.config.architectures == ["TransLandSegModel"] and not loaded.can_generate()


# ------------------------------------------------------------------------------------------ without the import
WITHOUT_IMPORT = {
    "PeftModel": "from peft import PeftModel\nfrom transformers import SamModel\n"
                 "PeftModel.from_pretrained(SamModel.from_pretrained({base!r}), {folder!r})",
    "AutoModel": "from transformers import AutoModel\nAutoModel.from_pretrained({folder!r})",
}


@pytest.mark.parametrize("route", WITHOUT_IMPORT)
def test_loading_without_the_package_says_what_is_missing(tiny_sam_folder, route):
    """No `import translandseg_hf`: transformers names the model type; PEFT's bare KeyError is all it can say (its
    table lookup comes first), so the card's usage snippet says to import the package."""
    code = WITHOUT_IMPORT[route].format(folder=str(tiny_sam_folder), base=str(tiny_sam_folder / "base_model"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode != 0
    expected = "KeyError: 'ATL'" if route == "PeftModel" else "model type `translandseg`"
    assert expected in result.stderr, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------ registration
# Whatever is imported first, transformers ends up knowing the model type and the pipeline class (the hooks meet
# modules half loaded in some of these orders).
IMPORT_ORDERS = {
    "package, then a model": "import translandseg_hf\nfrom translandseg_hf import TransLandSegModel",
    "transformers first": "from transformers import pipeline, AutoModel, AutoImageProcessor\nimport translandseg_hf",
    "the pipeline module alone": "import translandseg_hf.pipeline",
    "the auto module alone": "import translandseg_hf.auto\nfrom transformers import pipeline",
    "peft, then transformers": "import translandseg_hf, peft\nfrom transformers import pipeline",
}
CHECK_REGISTERED = """
from transformers import AutoModel, AutoImageProcessor
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.pipelines import PIPELINE_REGISTRY
from translandseg_hf.configuration_translandseg import TransLandSegConfig
assert CONFIG_MAPPING["translandseg"] is TransLandSegConfig
assert TransLandSegConfig in MODEL_MAPPING._extra_content and TransLandSegConfig in IMAGE_PROCESSOR_MAPPING._extra_content
assert PIPELINE_REGISTRY.supported_tasks["image-segmentation"]["impl"].__name__ == "LandslideSegmentationPipeline"
print("REGISTERED")
"""


@pytest.mark.parametrize("order", IMPORT_ORDERS)
def test_registration_holds_in_any_import_order(order):
    result = subprocess.run([sys.executable, "-c", IMPORT_ORDERS[order] + "\n" + CHECK_REGISTERED],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0 and "REGISTERED" in result.stdout, result.stderr[-3000:]
