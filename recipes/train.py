#!/usr/bin/env python
"""Fine-tune TransLandSeg (SAM + ATL adapters) on landslide data, as in Hou et al. 2024, or train one of the paper's
CNN baselines (--model unet | deeplabv3plus | pspnet | ccnet) with the same data, loss, schedule and metrics.

    accelerate launch recipes/train.py --config recipes/configs/bijie.yaml --data_dir PATH/TO/Bijie
    accelerate launch --multi_gpu --num_processes 2 recipes/train.py --config recipes/configs/demo.yaml
    python recipes/train.py --config recipes/configs/demo.yaml --epochs 2 --resume_from_checkpoint latest

Writes to output_dir: model/ (the best epoch by validation landslide IoU; any kind loads with
translandseg_hf.load_segmentation_model), metrics.json and checkpoints/.
An output_dir that already holds a run is refused unless --resume_from_checkpoint latest continues it or
--overwrite_output_dir true replaces it (trained in a sibling folder, swapped in only once the new run completes).
"""

from __future__ import annotations

from typing import Optional, Sequence

from translandseg_hf.errors import run_reporting_errors
from translandseg_hf.training import parse_config, train


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return train(parse_config(argv, description=__doc__))


if __name__ == "__main__":
    run_reporting_errors(main)
