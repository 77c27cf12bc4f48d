"""The training configuration: typed dataclasses read by transformers' `HfArgumentParser` from a YAML file, then
overridden by `--key value` on the command line. `python recipes/train.py --help` lists every key."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from ..atl.presets import ADAPTER_INPUTS, PLACEMENTS, PRESETS
from ..choices import DATASET_NAMES, MODEL_KINDS, SPLIT_SCHEMES
from ..console import DefaultsHelpFormatter
from ..hub import check_data_dir

# Keys that may change between a run and its resumption without changing what is computed (`deterministic` makes
# a resume compute it exactly as the run did).
RESUMABLE_KEYS = frozenset({"resume_from_checkpoint", "report_to", "push_to_hub", "num_workers", "output_dir",
                            "overwrite_output_dir", "deterministic"})
RANDOM_BASE = "random"  # base_model value for a small random SAM made by the run (demos, tests)


def option(default: Any = None, help: str = "", choices: Sequence = None, factory=None) -> Any:
    """A config field with its one line of help (shown by `--help`) and, where the values are fixed, its choices."""
    metadata = {"help": help, **({"choices": list(choices)} if choices else {})}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelArguments:
    """Which model trains: TransLandSeg on a SAM base, or a CNN baseline."""

    model: str = option("translandseg", "TransLandSeg (SAM + ATL) or a CNN baseline.", MODEL_KINDS)
    base_model: str = option("facebook/sam-vit-large", "SAM base: Hub id, SamModel folder, Meta .pth, or 'random'.")
    preset: str = option("translandseg", "ATL structure (the paper's Table IV).", PRESETS)
    encoder_name: str = option("resnet50", "CNN baselines: their encoder (the paper's baselines use ResNets).")
    encoder_weights: Optional[str] = option("imagenet", "CNN baselines: pretrained encoder weights (null: random).")
    image_size: int = option(1024, "Model input side in pixels; the paper resizes every image to 1024.")
    gradient_checkpointing: bool = option(False, "Recompute SAM's frozen blocks in backward: less memory, more time.")


@dataclass
class ATLArguments:
    """ATLConfig fields that override the preset's; unset ones keep the preset's value."""

    atl_bottleneck_dim: Optional[int] = option(None, "Bottleneck width d (default: hidden size / reduction factor).")
    atl_reduction_factor: Optional[int] = option(None, "Hidden size / d when atl_bottleneck_dim is unset (32).")
    atl_middle_layers: Optional[list[str]] = option(None, "Middle layers per block: m (Linear+GELU), c (conv+LN+GELU).")
    atl_conv_kernel_size: Optional[int] = option(None, "Kernel of MidLay_c's convolution on the token grid (3).")
    atl_residual: Optional[bool] = option(None, "Omega(x) = ATL(x) + x (eq. 7) when true, ATL(x) (eq. 15) when false.")
    atl_placement: Optional[str] = option(None, "Before each block (outside) or on the attention output.", PLACEMENTS)
    atl_adapter_input: Optional[str] = option(None, "What every ATL reads (patch_embedding: released code).",
                                              ADAPTER_INPUTS)
    atl_fft_branch: Optional[bool] = option(None, "The released code's FFT high-pass branch into L_down.")
    atl_fft_mask_ratio: Optional[float] = option(None, "Share of the spectrum zeroed by the FFT high-pass (0.25).")

    def overrides(self) -> dict[str, Any]:
        """The set fields, by ATLConfig's names."""
        return {f.name[4:]: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


@dataclass
class RandomSamArguments:
    """The small random SAM made when base_model is 'random' (its input side is image_size)."""

    random_sam_patch_size: int = option(4, "Patch side of the random SAM.")
    random_sam_hidden_size: int = option(32, "Hidden size of the random SAM's image encoder.")
    random_sam_num_hidden_layers: int = option(2, "Blocks of the random SAM's image encoder.")
    random_sam_embedding_channels: int = option(32, "Channels of the random SAM's image embedding and mask decoder.")

    def tiny_sam_arguments(self, image_size: int) -> dict[str, int]:
        """Arguments of `sam_configs.tiny_sam_config`."""
        return dict(image_size=image_size, patch_size=self.random_sam_patch_size, hidden_size=self.random_sam_hidden_size,
                    num_hidden_layers=self.random_sam_num_hidden_layers,
                    embedding_channels=self.random_sam_embedding_channels)


@dataclass
class DataArguments:
    """Which data, how it is split, and the options of its loader."""

    dataset: str = option("bijie", "Dataset loader.", DATASET_NAMES)
    data_dir: Optional[str] = option(None, "Folder holding the dataset, or its Hub dataset id such as "
                                    "ibm-nasa-geospatial/Landslide4sense (all but synthetic).")
    split_file: Optional[str] = option(None, "JSON split to read, or to write the default seeded split to.")
    split_scheme: Optional[str] = option(None, "Split of bijie and folder; unset: 'default', the seeded 70/10/20 "
                                         "train/validation/test split ('train' trains on everything, scoring "
                                         "nothing).", SPLIT_SCHEMES)
    include_non_landslide: bool = option(False, "bijie: add the non-landslide images (all-zero masks).")
    bands: str = option("rgb", "landslide4sense: 'rgb' (B4, B3, B2 as the paper), 'all' (the 14 bands) or 0-based "
                        "bands such as '3,2,1,7,12,13'; B4, B3, B2 go first and the others enter as extra bands.")
    band_statistics: str = option("train", "landslide4sense extra bands: normalise with the training split's "
                                  "statistics or the competition baseline's.", ("train", "competition"))
    images_dir: Optional[str] = option(None, "folder: the images folder, relative to data_dir when given, else to the "
                                       "current folder (or absolute); unset: data_dir/images.")
    masks_dir: Optional[str] = option(None, "folder: the masks folder, relative to data_dir when given, else to the "
                                      "current folder (or absolute); unset: data_dir/masks.")
    mask_name: Optional[list[str]] = option(None, "folder: PATTERN REPLACEMENT turning an image stem into its mask's.")
    on_error: str = option("raise", "Bad samples: raise, or skip and report each.", ("raise", "skip"))
    ground_resolution: Optional[float] = option(None, "Metres per pixel of the imagery, saved in the model's contract "
                                                "(default: the dataset's: bijie 0.8, landslide4sense 10).")
    synthetic_samples: int = option(120, "synthetic: number of scenes (split 70/10/20).")
    synthetic_image_size: int = option(256, "synthetic: scene side in pixels.")
    synthetic_seed: int = option(0, "synthetic: seed of the scenes.")
    augment: bool = option(True, "Flips, 90-degree rotations and colour jitter on training images.")
    max_train_samples: Optional[int] = option(None, "Train on the first N samples only (quick checks).")
    max_eval_samples: Optional[int] = option(None, "Evaluate on the first N samples of each split only.")

    def band_order(self) -> Optional[list[int]]:
        """Landslide4Sense's 0-based bands in channel order, B4, B3, B2 first; None for the paper's RGB."""
        text = self.bands.strip()
        if text == "rgb":
            return None
        chosen = list(range(14)) if text == "all" else [int(part) for part in text.split(",")]
        rgb = [3, 2, 1]
        if not set(rgb) <= set(chosen):
            raise ValueError(f"bands must include B4, B3 and B2 (3, 2, 1), which SAM sees as RGB; got {self.bands!r}.")
        return rgb + [band for band in chosen if band not in rgb]

    def extra_bands(self) -> int:
        """Input channels beyond RGB."""
        order = self.band_order() if self.dataset == "landslide4sense" else None
        return 0 if order is None else len(order) - 3

    def loader_options(self) -> dict[str, Any]:
        """Keyword arguments of this dataset's loader (`data.load_named_dataset`)."""
        if self.dataset == "synthetic":
            return dict(num_samples=self.synthetic_samples, image_size=self.synthetic_image_size,
                        seed=self.synthetic_seed)
        options: dict[str, Any] = {"on_error": self.on_error}
        if self.dataset == "landslide4sense":
            order = self.band_order()
            if order is None:
                options["bands"] = "rgb"
            else:  # the dataset's values: the image processor scales RGB and normalises the others
                options["bands"] = order
            return options
        if self.split_scheme is not None:
            options["split"] = self.split_scheme
        if self.dataset == "bijie":
            options["include_non_landslide"] = self.include_non_landslide
        if self.dataset == "folder":
            options.update({k: v for k, v in (("images_dir", self.images_dir), ("masks_dir", self.masks_dir)) if v})
            if self.mask_name:
                options["mask_name"] = tuple(self.mask_name)
        return options


@dataclass
class OptimizationArguments:
    """The paper's optimisation: AdamW 2e-4, cosine decay, 50 epochs, batch 2, 0.5 BCE + 0.5 Dice."""

    epochs: int = option(50, "Training epochs.")
    batch_size: int = option(2, "Training batch per process.")
    eval_batch_size: int = option(2, "Evaluation batch per process.")
    learning_rate: float = option(2e-4, "AdamW learning rate at the start of the cosine decay.")
    min_learning_rate: float = option(1e-7, "Learning rate at the end of the cosine decay.")
    weight_decay: float = option(0.01, "AdamW weight decay.")
    gradient_accumulation_steps: int = option(1, "Batches per optimiser step.")
    bce_weight: float = option(0.5, "Weight of binary cross-entropy in the loss.")
    dice_weight: float = option(0.5, "Weight of soft Dice in the loss.")
    pos_weight: Optional[float] = option(None, "Weight of landslide pixels in the BCE term (rare landslides).")
    threshold: float = option(0.5, "Probability above which a pixel counts as landslide in the scores.")


@dataclass
class RunArguments:
    """Where a run writes, how it checkpoints and resumes, and what it reports."""

    seed: int = option(42, "Seed of initialisation, shuffling and augmentation.")
    mixed_precision: str = option("no", "Autocast dtype (bf16 on recent GPUs).", ("no", "fp16", "bf16"))
    num_workers: int = option(0, "DataLoader worker processes.")
    output_dir: str = option("runs/translandseg", "Folder for model/, metrics.json and checkpoints/.")
    overwrite_output_dir: bool = option(False, "Replace the run already in output_dir: train in a sibling folder and "
                                               "swap it in once complete (without it such a run is refused).")
    checkpointing_steps: Optional[int] = option(None, "Also save a checkpoint every N optimiser steps.")
    checkpoint_total_limit: Optional[int] = option(2, "Complete checkpoints kept (older ones are deleted once a newer "
                                                      "one is complete); null keeps all.")
    resume_from_checkpoint: Optional[str] = option(None, "'latest' or a checkpoint folder to resume from.")
    deterministic: bool = option(False, "Deterministic kernels, and a resume computes with the checkpoint's CPU "
                                        "thread count: bitwise the weights of an uninterrupted run.")
    report_to: str = option("none", "Experiment tracker.", ("none", "tensorboard", "wandb", "all"))
    push_to_hub: Optional[str] = option(None, "Hub repository id to upload the best model to.")


SECTIONS = (ModelArguments, ATLArguments, RandomSamArguments, DataArguments, OptimizationArguments, RunArguments)


@dataclass
class TrainConfig:
    """Everything a run depends on, by section; `metrics.json` and each checkpoint record it (flat, see `to_dict`)."""

    model: ModelArguments = field(default_factory=ModelArguments)
    atl: ATLArguments = field(default_factory=ATLArguments)
    random_sam: RandomSamArguments = field(default_factory=RandomSamArguments)
    data: DataArguments = field(default_factory=DataArguments)
    optimization: OptimizationArguments = field(default_factory=OptimizationArguments)
    run: RunArguments = field(default_factory=RunArguments)

    def __post_init__(self):
        if not (self.data.dataset == "folder" and self.data.images_dir):  # folder_paths checks those at the run
            check_data_dir(self.data.dataset, self.data.data_dir, must_exist=False)  # the folder is checked at the run
        positive = [(self.model, "image_size"), (self.optimization, "epochs"), (self.optimization, "batch_size"),
                    (self.optimization, "eval_batch_size"), (self.optimization, "gradient_accumulation_steps")]
        if self.run.checkpoint_total_limit is not None:
            positive.append((self.run, "checkpoint_total_limit"))
        for section, name in positive:
            if getattr(section, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(section, name)}.")

    def to_dict(self) -> dict[str, Any]:
        """Flat keys, as in YAML files."""
        return {k: v for section in dataclasses.fields(self) for k, v in dataclasses.asdict(getattr(self, section.name)).items()}


def config_keys() -> list[str]:
    return [f.name for section in SECTIONS for f in dataclasses.fields(section)]


class _HelpFormatter(DefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """`--key TYPE  help (default: value)`: the type as metavar, the default after the help (once)."""

    def _get_default_metavar_for_optional(self, action):
        kind = getattr(action.type, "__name__", "value")
        return {"string_to_bool": "BOOL"}.get(kind, kind.upper())


def make_parser(sections: Sequence[type], description: Optional[str] = None):
    """`HfArgumentParser` over `sections` plus `--config FILE.yaml`; keys are never abbreviated."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(sections, description=description, formatter_class=_HelpFormatter, allow_abbrev=False)
    parser.add_argument("--config", metavar="YAML", help="YAML file of config keys; the command line overrides it.")
    return parser


def parse_sections(
    sections: Sequence[type], argv: Optional[Sequence[str]] = None, description: Optional[str] = None,
    foreign_yaml_keys: Sequence[str] = (),
) -> list:
    """Fill `sections` (dataclasses) from `--config FILE.yaml`, then the command line, with `HfArgumentParser`.

    An unknown or abbreviated key on the command line is a usage error (exit 2, with the usage line); an unknown key
    in the YAML file is a ValueError naming the file. `foreign_yaml_keys` may appear in the file and are ignored
    (a training config read by the evaluation recipe)."""
    parser = make_parser(sections, description)
    known, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (see --help for the valid keys)")
    values = read_yaml_config(Path(known.config)) if known.config else {}
    keys = {f.name for section in sections for f in dataclasses.fields(section)}
    bad = sorted(set(values) - keys - set(foreign_yaml_keys))
    if bad:
        raise ValueError(f"Unknown config key(s) {bad} in {known.config}; valid keys: {sorted(keys)}.")
    parser.set_defaults(**{k: v for k, v in values.items() if k in keys})
    *filled, _ = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    for section in filled:
        check_values(section)
    return filled


def check_values(section) -> None:
    """`null` on the command line is None, as in YAML; argparse checks choices on the command line only, so values
    from a YAML file are checked here."""
    hints = typing.get_type_hints(type(section))  # HfArgumentParser rewrites `Field.type`; annotations stay whole
    for f in dataclasses.fields(section):
        if type(None) in typing.get_args(hints[f.name]) and getattr(section, f.name) in ("null", "None"):
            setattr(section, f.name, None)
        choices, value = f.metadata.get("choices"), getattr(section, f.name)
        if choices and value is not None and value not in choices:
            raise ValueError(f"{f.name} must be one of {choices}, got {value!r}.")


def parse_config(argv: Optional[Sequence[str]] = None, description: Optional[str] = None) -> TrainConfig:
    """The run's config from `--config FILE.yaml` and `--key value` overrides."""
    return TrainConfig(*parse_sections(SECTIONS, argv, description))


def read_yaml_config(path: Path, _seen: tuple = ()) -> dict[str, Any]:
    """A YAML config; `inherit: other.yaml` (relative to this file) reads that one first and overrides it."""
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist.")
    if path.resolve() in _seen:
        raise ValueError(f"Config {path} inherits from itself.")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of config keys, got {type(values).__name__}.")
    parent = values.pop("inherit", None)
    if parent is None:
        return values
    return {**read_yaml_config(path.parent / parent, _seen + (path.resolve(),)), **values}


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys whose values differ between a checkpoint's config and this run's, ignoring RESUMABLE_KEYS."""
    keys = (set(saved) | set(current)) - RESUMABLE_KEYS
    return sorted(key for key in keys if saved.get(key) != current.get(key))
