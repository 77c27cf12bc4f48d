"""Run tutorial pages top to bottom and (re)write the pictures they link under docs/tutorials/figures/.

    python scripts/run_tutorial.py                          # every page in docs/tutorials/
    python scripts/run_tutorial.py docs/tutorials/fine-tune.md

Each page runs as tests/docs/test_tutorials.py runs it (tests/helpers/doc_blocks.py: a fresh working directory,
offline); this prints each block's time and the figures copied. Commit the figures it writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.doc_blocks import PageError, refresh_figures  # noqa: E402

TUTORIALS = ROOT / "docs" / "tutorials"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="Markdown pages (default: every docs/tutorials/*.md).")
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds per page. (default: 600)")
    args = parser.parse_args(argv)
    pages = args.pages or sorted(TUTORIALS.glob("*.md"))
    failed = 0
    for page in pages:
        try:
            run, written = refresh_figures(page, args.timeout)
        except PageError as error:
            print(f"FAILED {error}", file=sys.stderr)
            failed += 1
            continue
        for block in run.blocks:
            print(f"{page.name}:{block.block.line} {block.block.language} {block.seconds:.1f} s")
        print(f"{page.name}: {run.seconds:.1f} s; figures: {', '.join(str(p.relative_to(ROOT)) for p in written)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
