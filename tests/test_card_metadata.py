"""The model card's metadata as the Hugging Face Hub reads it (issue 38 item 4): `huggingface_hub.ModelCard.load` of a
saved model's README.md, its `model-index` parsed by the Hub's own parser (`model_index_to_eval_results`), and the
training datasets named by Hub dataset ids where the package knows them."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.cards import card_dataset
from translandseg_hf.metrics import segmentation_scores
from translandseg_hf.sam_configs import tiny_sam_config

SAM_ID = "facebook/sam-vit-base"
TEST = segmentation_scores(tp=30, fp=10, fn=5, tn=955)
VALIDATION = segmentation_scores(tp=20, fp=4, fn=8, tn=968)
# The four scores the Hub shows: (metric type = the key `landslide_segmentation_metric` returns, name).
SHOWN = {"f1": "F1, mean of background and landslide (%)", "miou": "MIoU, mean IoU of background and landslide (%)",
         "landslide_f1": "Landslide-class F1 (%)", "landslide_iou": "Landslide-class IoU (%)"}


@pytest.fixture(scope="module")
def saved_card(tmp_path_factory) -> ModelCard:
    """A TransLandSeg model on a Hub SAM, saved with validation and test scores on Landslide4Sense."""
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    model.base_model_name_or_path = SAM_ID
    folder = tmp_path_factory.mktemp("card")
    model.save_pretrained(folder, model_card_kwargs=dict(
        model_name="TransLandSeg on landslide4sense", datasets=["landslide4sense"],
        metrics={"validation": VALIDATION, "test": TEST}, split_sizes={"validation": 245, "test": 800}))
    return ModelCard.load(folder / "README.md")


def test_a_translandseg_card_is_a_peft_adapter_of_its_sam(saved_card):
    data = saved_card.data
    assert (data.library_name, data.base_model, data.pipeline_tag) == ("peft", SAM_ID, "image-segmentation")
    assert "translandseg-hf" in data.tags
    assert data.datasets == ["ibm-nasa-geospatial/Landslide4sense"]


def test_the_model_index_holds_the_four_test_scores_named(saved_card):
    model_name, results = model_index_to_eval_results(saved_card.data.to_dict()["model-index"])
    assert model_name == "TransLandSeg on landslide4sense"
    assert {r.metric_type: r.metric_name for r in results} == SHOWN
    assert {r.metric_type: r.metric_value for r in results} == {key: round(100 * TEST[key], 2) for key in SHOWN}
    assert {(r.task_type, r.dataset_type, r.dataset_name, r.dataset_split) for r in results} == {
        ("image-segmentation", "ibm-nasa-geospatial/Landslide4sense", "Landslide4Sense", "test")}
    assert [r.metric_type for r in saved_card.data.eval_results] == list(SHOWN)  # ModelCard.load parses it too


@pytest.mark.parametrize(
    "datasets, metrics, metadata, index_dataset",
    [
        # a dataset loader's name: its Hub id where the package knows one, none where it does not
        (["landslide4sense"], {"test": TEST}, ["ibm-nasa-geospatial/Landslide4sense"],
         ("ibm-nasa-geospatial/Landslide4sense", "Landslide4Sense")),
        (["bijie"], {"test": TEST}, None, ("bijie", "Bijie landslide dataset")),
        (["synthetic"], {"test": TEST}, None, ("synthetic", "Synthetic landslide scenes")),
        # a Hub dataset id (the training data came from it) stays as it is
        (["lab/bijie-mirror"], {"test": TEST}, ["lab/bijie-mirror"], ("lab/bijie-mirror", "lab/bijie-mirror")),
        # no test scores, no model-index (validation scores choose the epoch: they are not the model's result)
        (["bijie"], {"validation": VALIDATION}, None, None),
        (None, {"test": TEST}, None, None),
    ],
)
def test_dataset_ids_and_model_index(tmp_path, tiny_sam, datasets, metrics, metadata, index_dataset):
    model = TransLandSegModel.from_sam(tiny_sam)
    card = model.generate_model_card(model_name="m", datasets=datasets, metrics=metrics)
    card.save(tmp_path / "README.md")
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.datasets == metadata
    found = {(r.dataset_type, r.dataset_name) for r in data.eval_results or []}
    assert found == ({index_dataset} if index_dataset else set())


@pytest.mark.parametrize(
    "dataset, data_dir, named",
    [
        ("bijie", "lab/bijie-on-the-hub", "lab/bijie-on-the-hub"),  # read from a Hub dataset repository
        ("bijie", "/data/Bijie-landslide-dataset", "bijie"),  # a local folder: the loader's name
        ("landslide4sense", "./Landslide4Sense", "landslide4sense"),
        ("synthetic", None, "synthetic"),
    ],
)
def test_a_training_run_names_its_data_by_hub_id_when_it_read_one(dataset, data_dir, named):
    assert card_dataset(dataset, data_dir) == named


def test_a_baseline_card_is_not_a_peft_adapter(tmp_path):
    """A CNN baseline's folder holds the whole network in this package's format (no adapter_config.json): PEFT
    cannot load it, so its library stays translandseg-hf, and it has no base model."""
    pytest.importorskip("segmentation_models_pytorch")
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel

    model = BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64))
    model.save_pretrained(tmp_path, model_card_kwargs=dict(datasets=["bijie"], metrics={"test": TEST}))
    data = ModelCard.load(tmp_path / "README.md").data
    assert (data.library_name, data.base_model, data.pipeline_tag) == ("translandseg-hf", None, "image-segmentation")
    assert "translandseg-hf" in data.tags and "peft" not in data.tags
    assert [r.metric_type for r in data.eval_results] == list(SHOWN)
