"""Model and data of a run, built from its `TrainConfig` (which kinds of model exist, and which saved format each
has, is `model_kinds.KINDS`: this module builds the two formats a run trains, TransLandSeg and the CNN baselines)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict

from ..atl import ATLConfig
from ..data import SamTransform, dataset_contract, folder_paths, load_named_dataset, prepare_dataset
from ..data.transforms import transform_of
from ..image_processing import TransLandSegImageProcessor
from ..hub import check_data_dir, is_local, local_path
from ..io_utils import give_new_file_mode
from ..losses import LossConfig
from ..model_kinds import model_kind
from ..sam_configs import tiny_sam_config
from ..segmentation import SegmentationModel
from .config import RANDOM_BASE, TrainConfig

RANDOM_BASE_FOLDER = "base_model"  # where a run keeps the small random SAM it made


def check_inputs_exist(config: TrainConfig) -> None:
    """Fail before any work when the data folder (a folder dataset's images and masks folders) or a local base model
    is missing."""
    data = config.data
    if data.dataset == "folder" and (data.data_dir is None or is_local(data.data_dir)):
        folder_paths(data.data_dir, data.images_dir, data.masks_dir)
    else:  # a Hub id: its repository exists, with only its card fetched (the loader fetches the files)
        check_data_dir(data.dataset, data.data_dir)
    if model_kind(config.model.model).saved_as == "translandseg" and config.model.base_model != RANDOM_BASE:
        local_path(config.model.base_model, "base_model: a SAM Hub id, folder or .pth file")


def build_model(config: TrainConfig, output_dir: Path) -> SegmentationModel:
    """TransLandSeg on the run's SAM base and ATL structure, or a CNN baseline; with the run's loss."""
    loss_config = LossConfig(config.optimization.bce_weight, config.optimization.dice_weight,
                             config.optimization.pos_weight)
    if model_kind(config.model.model).saved_as == "baseline":
        return build_baseline(config, loss_config)
    from ..modeling_translandseg import TransLandSegModel

    base, random_base = config.model.base_model, config.model.base_model == RANDOM_BASE
    if random_base:
        base = str(make_random_base(config, output_dir))
    atl_config = ATLConfig.from_preset(config.model.preset, extra_bands=config.data.extra_bands(),
                                       **config.atl.overrides())
    model = TransLandSegModel.from_sam(base, atl_config, image_size=config.model.image_size)  # resampled if needed
    model.loss_config, model.bundle_base = loss_config, random_base  # a random base lives in the run's folder only
    if config.model.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model


def make_random_base(config: TrainConfig, output_dir: Path) -> Path:
    """Create (once) and save the run's small random SAM, so the saved model can name it."""
    from transformers import SamModel

    folder = output_dir / RANDOM_BASE_FOLDER
    if not (folder / "config.json").is_file():
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.run.seed)
        sam_config = tiny_sam_config(**config.random_sam.tiny_sam_arguments(config.model.image_size))
        SamModel(sam_config).save_pretrained(str(folder))
        give_new_file_mode(folder.iterdir())
        torch.random.set_rng_state(generator_state)
    return folder


def build_baseline(config: TrainConfig, loss_config: LossConfig) -> SegmentationModel:
    """A CNN baseline at the run's image size, fully trainable, with the same loss as TransLandSeg."""
    from ..baselines import BaselineConfig, BaselineSegmentationModel

    if config.model.gradient_checkpointing:
        raise ValueError(f"gradient_checkpointing applies to TransLandSeg's SAM encoder, not to {config.model.model!r}.")
    model = config.model
    try:
        baseline = BaselineConfig(model.model, model.encoder_name, model.encoder_weights, model.image_size,
                                  in_channels=3 + config.data.extra_bands())
        return BaselineSegmentationModel(baseline, loss_config)
    except KeyError as error:  # segmentation-models-pytorch's answer to an unknown encoder or weights name
        raise ValueError(f"segmentation-models-pytorch has no {model.model!r} with encoder_name "
                         f"{model.encoder_name!r} and encoder_weights {model.encoder_weights!r}: {error}") from error


def build_datasets(config: TrainConfig) -> tuple[DatasetDict, SamTransform]:
    """The run's splits with lazy preprocessing by the run's image processor (the contract saved with the model),
    and the training split's transform (augmentation seeded by run seed, epoch and sample, so a resumed run draws
    what an uninterrupted one draws); `transform.processor` is that contract."""
    data = config.data
    splits = load_named_dataset(data.dataset, data.data_dir, data.split_file, **data.loader_options())
    limits = {"train": data.max_train_samples}
    for name in splits:
        limit = limits.get(name, data.max_eval_samples)
        if limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    if "train" not in splits or len(splits["train"]) == 0:
        raise ValueError(f"Dataset {data.dataset!r} in {data.data_dir or data.images_dir} has no training samples.")
    processor = build_image_processor(config, splits["train"])
    prepared = prepare_dataset(splits, processor, data.augment, config.run.seed)
    return prepared, transform_of(prepared["train"])


def build_image_processor(config: TrainConfig, train_split) -> TransLandSegImageProcessor:
    """The input contract of the run: the dataset's bands and scaling, the model's input side, the scene pixels one
    input covers (the dataset's patch size, else the training images' median side) and the ground resolution."""
    data = config.data
    contract = dataset_contract(data.dataset)
    if data.extra_bands():
        contract.update(extra_band_contract(data, train_split))
    if "tile_size" not in contract:  # datasets of varied image sizes: what a typical training image covered
        contract["tile_size"] = median_image_side(train_split)
    if data.ground_resolution is not None:
        contract["ground_resolution"] = data.ground_resolution
    return TransLandSegImageProcessor(**contract, input_size=config.model.image_size)


def extra_band_contract(data, train_split, max_patches: int = 256) -> dict:
    """Landslide4Sense's bands in channel order with names, and the extra bands' statistics: the competition
    baseline's, or the training split's (over up to `max_patches` patches, evenly spaced)."""
    from ..data.landslide4sense import BAND_NAMES, LANDSLIDE4SENSE_MEAN, LANDSLIDE4SENSE_STD
    from ..geo.sentinel2.bands import landslide4sense_source

    order = data.band_order()
    extra = order[3:]
    if data.band_statistics == "competition":
        mean, std = [LANDSLIDE4SENSE_MEAN[b] for b in extra], [LANDSLIDE4SENSE_STD[b] for b in extra]
    else:
        picks = np.linspace(0, len(train_split) - 1, min(max_patches, len(train_split))).round().astype(int)
        patches = np.stack([np.asarray(train_split[int(i)]["image"], np.float32)[..., 3:] for i in picks])
        mean = patches.mean(axis=(0, 1, 2)).tolist()
        std = np.maximum(patches.std(axis=(0, 1, 2)), 1e-6).tolist()
    return dict(bands=[b + 1 for b in order], band_names=[BAND_NAMES[b] for b in order], band_mean=mean,
                band_std=std, **landslide4sense_source(order))


def median_image_side(split) -> int:
    """The median of the training images' mean sides, read from their headers (nothing is decoded)."""
    from datasets import Image as ImageFeature
    from PIL import Image

    sides = []
    for item in split.cast_column("image", ImageFeature(decode=False))["image"]:
        source = item["path"] if item.get("bytes") is None else io.BytesIO(item["bytes"])
        with Image.open(source) as image:
            sides.append((image.width + image.height) / 2)
    return int(round(float(np.median(sides))))
