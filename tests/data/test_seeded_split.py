"""The default split assigns each key by a seeded hash of its own name: adding or removing files moves no other
file, so a model's test images stay out of its training set whatever other samples a later run reads."""

from __future__ import annotations

import pytest

from translandseg_hf.data import load_bijie
from translandseg_hf.data.splits import seeded_split, split_sizes

from helpers.datasets import write_bijie

# Bijie's sizes: 770 landslide and 2003 non-landslide scenes
LANDSLIDE = [f"df{index:03d}" for index in range(770)]
NON_LANDSLIDE = [f"non{index:04d}" for index in range(2003)]


def membership(splits):
    return {key: name for name, members in splits.items() for key in members}


def test_a_keys_split_does_not_depend_on_the_other_keys():
    alone, together = membership(seeded_split(LANDSLIDE)), membership(seeded_split(LANDSLIDE + NON_LANDSLIDE))
    assert all(together[key] == name for key, name in alone.items())  # the shuffle put 81 of 154 test keys in train
    fewer = membership(seeded_split(LANDSLIDE[1:] + ["df999"]))  # one file removed, one added
    assert {key: name for key, name in fewer.items() if key != "df999"} == {k: alone[k] for k in LANDSLIDE[1:]}


def test_a_seed_gives_one_split_and_another_seed_another():
    assert seeded_split(list(reversed(LANDSLIDE))) == seeded_split(LANDSLIDE)
    assert seeded_split(LANDSLIDE, seed=7)["test"] != seeded_split(LANDSLIDE)["test"]


def test_large_sets_come_within_1_percent_of_70_10_20():
    keys = LANDSLIDE + NON_LANDSLIDE
    sizes = {name: len(members) for name, members in seeded_split(keys).items()}
    assert sum(sizes.values()) == len(keys) == 2773
    assert [sizes[name] / len(keys) for name in ("train", "validation", "test")] == pytest.approx([0.7, 0.1, 0.2],
                                                                                                    abs=0.01)


@pytest.mark.parametrize("count", range(1, 40))
def test_small_sets_keep_every_split_the_70_10_20_sizes_give_members(count):
    """Hashes alone left 12 keys without a validation key; the nearest key moves in, as `split_sizes` promises one."""
    keys = [f"tile{index:02d}" for index in range(count)]
    splits = seeded_split(keys)
    assert sorted(key for members in splits.values() for key in members) == keys
    for name, size in zip(("train", "validation", "test"), split_sizes(count)):
        assert not size or splits[name], (name, {n: len(m) for n, m in splits.items()})


def test_bijie_landslide_test_images_stay_test_images_with_the_non_landslide_scenes(tmp_path):
    stems, others = [f"df{index:02d}" for index in range(20)], [f"non{index:02d}" for index in range(30)]
    root = write_bijie(tmp_path / "bijie", stems=stems, non_landslide=others)
    alone = load_bijie(root, cache_dir=tmp_path / "cache")
    together = load_bijie(root, include_non_landslide=True, cache_dir=tmp_path / "cache")
    in_together = {name: set(split["id"]) for name, split in together.items()}
    for name, split in alone.items():
        assert set(split["id"]) <= in_together[name], name
