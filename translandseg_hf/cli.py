"""The `translandseg` command: `translandseg params` prints Table III for any preset and SAM architecture."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .atl import PRESETS
from .sam_configs import SAM_ARCHITECTURES


def _params(args: argparse.Namespace) -> int:
    from .parameter_table import parameter_table

    presets = list(PRESETS) if args.preset == ["all"] else args.preset
    print(parameter_table(args.architecture, presets))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="translandseg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="Parameter counts (Table III), built on the meta device.")
    params.add_argument("--architecture", choices=list(SAM_ARCHITECTURES), default="vit_l")
    params.add_argument("--preset", nargs="+", default=["all"], choices=["all", *PRESETS], help="ATL presets to count.")
    params.set_defaults(run=_params)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
