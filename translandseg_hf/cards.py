"""The model card every kind of segmentation model writes: one template, filled with the kind's own details (their
wording is here too: `translandseg_details`, `baseline_details`), its input contract and the run's scores. The
contract's wording (`describe_contract` for summaries and the app, `contract_lines` for the card) is here too."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Optional, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .choices import DATASET_NAMES
from .geo.sentinel2.bands import LEVEL_VALUES
from .hub import is_local
from .metrics import TABLE_NOTE, table_header, table_row

PAPER_URL = "https://arxiv.org/abs/2403.10127"
CARD_METRICS = ["precision", "recall", "f1", "accuracy", "mean_iou"]
# The Hub dataset repository of a dataset loader, where the package knows one (the mirror `load_landslide4sense` reads):
# the card's `datasets` metadata links to it. A loader without one is named in the model-index only, since the Hub
# would link a bare `bijie` to a dataset page that does not exist.
HUB_DATASET_IDS = {"landslide4sense": "ibm-nasa-geospatial/Landslide4sense"}
DATASET_TITLES = {"bijie": "Bijie landslide dataset", "landslide4sense": "Landslide4Sense",
                  "folder": "Image folder", "synthetic": "Synthetic landslide scenes"}
# The test scores the Hub shows from the card's `model-index`, in percent: the key `landslide_segmentation_metric`
# returns (the metric's type) and its name, which says whether it is a mean over both classes or the landslide class's.
INDEX_METRICS = {"f1": "F1, mean of background and landslide (%)",
                 "miou": "MIoU, mean IoU of background and landslide (%)",
                 "landslide_f1": "Landslide-class F1 (%)", "landslide_iou": "Landslide-class IoU (%)"}
CARD_TEMPLATE = resources.files(__package__).joinpath("model_card.md").read_text(encoding="utf-8")
# How each scale is worded: (the one line of `describe_contract`, the model card's line of `contract_lines`).
SCALING_TEXT = {
    "none": ("8-bit values as they are", "none (8-bit values as they are)"),
    "divisor": ("value / {divisor:g} * 255", "`value / {divisor:g} * 255`, clipped"),
    "percentile": ("a {low:g}-{high:g} percentile stretch", "a per-scene {low:g}-{high:g} percentile stretch"),
}


@dataclass
class CardDetails:
    """What a model kind says about itself on its model card."""

    model_name: str
    summary: str  # one paragraph: what the model is and where its weights come from
    structure: list[str] = field(default_factory=list)  # one Markdown line per structural fact
    base_model: Optional[str] = None  # a Hub id only: the card's `base_model` metadata links to it
    tags: list[str] = field(default_factory=list)
    library_name: Optional[str] = None  # the Hub library that loads the folder (its "Use this model"); None: ours


def translandseg_details(display_name: str, base: Optional[str], hub_base: Optional[str], bundled_in: Optional[str],
                         preset: str, structure: dict, image_size: int, extra_bands: int) -> CardDetails:
    """A TransLandSeg model's card details: SAM with ATL adapters, where its frozen base comes from (bundled in the
    `bundled_in` subfolder, a Hub id `hub_base`, or a local path `base`), and its ATL structure."""
    if bundled_in:
        where = f"The frozen base SAM is bundled beside the adapter, in `{bundled_in}/`."
    elif hub_base:
        where = f"The frozen base, [`{base}`](https://huggingface.co/{base}), is loaded from its own repository."
    else:
        where = (f"The frozen base was read from the local path `{base}`, which is not part of this folder: "
                 "where that path does not exist, pass `base_model=` to `TransLandSegModel.from_pretrained`.")
    summary = (
        "A landslide segmentation model: Segment Anything (SAM) adapter-tuned with ATL (adaptive transfer learning) "
        "layers, the method of *TransLandSeg* (Hou et al., 2024). It is prompt-free: the mask decoder runs on the "
        "image embeddings alone and gives one binary landslide mask. This folder holds the adapter only (ATL "
        f"layers, SAM's mask decoder and its no-mask embedding). {where}"
    )
    lines = [
        f"ATL preset: `{preset}`",
        "ATL configuration: " + ", ".join(f"`{key}={value!r}`" for key, value in structure.items()),
        f"Input: {image_size} x {image_size} px, RGB" + (
            f" + {extra_bands} extra bands through a band embedding" if extra_bands else ""),
        "`import translandseg_hf` registers the `ATL` PEFT type: it must precede `peft.PeftModel.from_pretrained`",
    ]
    # The folder is a PEFT adapter (adapter_config.json): PEFT loads it once `import translandseg_hf` registers ATL.
    return CardDetails(display_name, summary, lines, hub_base, ["peft", "atl", "segment-anything"], "peft")


def baseline_details(display_name: str, architecture: str, encoder_name: str, encoder_weights: Optional[str],
                     image_size: int, in_channels: int) -> CardDetails:
    """A CNN baseline's card details: trained with TransLandSeg's recipe, the whole network in the folder."""
    summary = (f"A {display_name} landslide-segmentation baseline of *TransLandSeg* (Hou et al., 2024), "
               "trained with the same recipe as TransLandSeg (same data, loss and metrics). This folder holds "
               "the whole network.")
    structure = [f"Architecture: {architecture}, encoder `{encoder_name}` (started from `{encoder_weights}` weights)",
                 f"Input: {image_size} x {image_size} px, {in_channels} bands"]
    return CardDetails(f"{display_name} landslide baseline", summary, structure, None, ["baseline", "cnn"])


def model_card(
    model,
    repo_id: str = "path/to/this/folder",
    model_name: Optional[str] = None,
    datasets: Optional[Sequence[str]] = None,
    metrics: Optional[dict] = None,
    split_sizes: Optional[dict] = None,
    best_epoch: Optional[int] = None,
) -> ModelCard:
    """The card of a `SegmentationModel`: its `card_details`, parameter counts and contract, and the run's scores."""
    details = model.card_details()
    info = model._hub_mixin_info
    model_name = model_name or details.model_name
    data = card_data(info.model_card_data, details, datasets, model_name, (metrics or {}).get("test"))
    counts = model.parameter_counts()
    return ModelCard.from_template(
        data, template_str=info.model_card_template, model_name=model_name,
        summary=details.summary, structure=details.structure, repo_id=repo_id, paper_url=info.paper_url,
        total=f"{counts['total']:,}", trainable=f"{counts['trainable']:,}",
        metrics=scores_table(metrics, split_sizes, best_epoch), contract=contract_lines(model.image_processor),
    )


def card_data(mixin_data: ModelCardData, details: CardDetails, datasets: Optional[Sequence[str]], model_name: str,
              test: Optional[dict]) -> ModelCardData:
    """The card's metadata: the mixin's (this package's library name becomes a tag where another library loads the
    folder), the kind's base model and tags, the datasets by Hub id, and the test scores as a `model-index`."""
    data = ModelCardData(**mixin_data.to_dict())
    package = data.library_name
    data.library_name = details.library_name or package
    data.tags = sorted(set((data.tags or []) + details.tags + [package]) - {"model_hub_mixin"})
    data.base_model = details.base_model
    if details.base_model and data.library_name == "peft":
        data.base_model_relation = "adapter"
    data.datasets = [hub_id for hub_id in map(hub_dataset_id, datasets or []) if hub_id] or None
    data.metrics = CARD_METRICS
    results = eval_results(test, datasets[0]) if datasets and test else []
    if results:
        data.eval_results, data.model_name = results, model_name
    return data


def hub_dataset_id(dataset: str) -> Optional[str]:
    """The Hub dataset id of a card's dataset: a loader's name maps to its known repository (none for Bijie, folders
    and synthetic data, `HUB_DATASET_IDS`); any other name is a Hub id already (the one training read)."""
    return HUB_DATASET_IDS.get(dataset) if dataset in DATASET_NAMES else dataset


def card_dataset(dataset: str, data_dir: Optional[str]) -> str:
    """What a training run's card names its data by: the Hub dataset id it read (`data_dir`), else the loader's name."""
    return str(data_dir) if data_dir and not is_local(data_dir) else dataset


def eval_results(test: dict, dataset: str) -> list[EvalResult]:
    """The test scores the Hub shows (`INDEX_METRICS`, in percent), on the dataset by Hub id where one is known."""
    dataset_type = hub_dataset_id(dataset) or dataset
    return [EvalResult(task_type="image-segmentation", task_name="Landslide segmentation", dataset_type=dataset_type,
                       dataset_name=DATASET_TITLES.get(dataset, dataset), dataset_split="test", metric_type=key,
                       metric_name=name, metric_value=round(100 * test[key], 2))
            for key, name in INDEX_METRICS.items() if key in test]


def scores_table(metrics: Optional[dict], split_sizes: Optional[dict] = None, best_epoch: Optional[int] = None) -> str:
    """The card's scores section: the paper's columns per split, with split sizes and the epoch they come from."""
    metrics = {split: scores for split, scores in (metrics or {}).items() if scores}
    if not metrics:
        return "No evaluation was recorded with this model."
    sizes = split_sizes or {}
    rows = [table_row(f"{split} (n={sizes[split]})" if split in sizes else split, s) for split, s in metrics.items()]
    epoch = f" The weights are those of epoch {best_epoch}, the best by validation landslide IoU." if best_epoch else ""
    return (
        f"{TABLE_NOTE}{epoch}\n\n"
        f"{table_header('split')}\n" + "\n".join(rows)
    )


def scaling_text(contract, form: int) -> str:
    """The contract's scaling in words: `form` 0 for the one line, 1 for the card (SCALING_TEXT)."""
    low, high = contract.percentiles
    return SCALING_TEXT[contract.scale][form].format(divisor=contract.divisor, low=low, high=high)


def describe_contract(contract) -> str:
    """One line for summaries and the app: bands, scaling, tiles (of a `TransLandSegImageProcessor`)."""
    ground = f" at {contract.ground_resolution:g} m" if contract.ground_resolution else " (ground resolution unknown)"
    return (f"bands {','.join(map(str, contract.bands))}, {scaling_text(contract, 0)}; tiles of {contract.tile_size} "
            f"px{ground} resized to {contract.input_size} px")


def contract_lines(contract) -> list[str]:
    """The model card's input section: what `translandseg predict` will read and how."""
    ground = f"{contract.ground_resolution:g} m per pixel" if contract.ground_resolution else "unknown"
    return [f"Bands (1-based, in channel order): {', '.join(map(str, contract.bands))}",
            f"Scaling to 0-255: {scaling_text(contract, 1)}",
            f"Tile size: {contract.tile_size} px of the scene per model input, resized to {contract.input_size} px",
            f"Ground resolution of the training imagery: {ground}"] + sensor_lines(contract)


def sensor_lines(contract) -> list[str]:
    """The sensor lines of the model card: the product level, and the real band and divisor of each channel."""
    if contract.sensor_bands is None:
        return []
    level = contract.product_level
    level = f"{level} ({LEVEL_VALUES[level]})" if level in LEVEL_VALUES else level
    lines = [f"Sensor: {contract.sensor or 'unknown'}" + (f", product level {level}" if level else "")]
    if contract.sensor_divisors is not None:
        pairs = [f"{band} / {divisor:g}" for band, divisor in zip(contract.sensor_bands, contract.sensor_divisors)]
        lines.append("Channels from the sensor (value / divisor = the training value): " + ", ".join(pairs))
    else:
        lines.append("Channels from the sensor: " + ", ".join(contract.sensor_bands))
    return lines
