"""Old home of the contract's overrides and tile planning, now methods of `TransLandSegImageProcessor`; these names
keep the old call forms working until every caller uses the methods."""

from __future__ import annotations

from ..image_processing import OVERRIDABLE, TilePlan, TransLandSegImageProcessor

__all__ = ["OVERRIDABLE", "TilePlan", "contract_with_overrides", "plan_tiles"]

contract_with_overrides = TransLandSegImageProcessor.with_overrides
plan_tiles = TransLandSegImageProcessor.plan_tiles
