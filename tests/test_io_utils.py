"""Atomic writes: files and folders appear whole, with the modes the umask gives (not mkstemp's private 0600)."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from translandseg_hf.io_utils import atomic_write_json, atomic_write_text, move_files_into, staging_dir_for

# umask -> (file mode, folder mode), written out rather than computed as the code does.
MODES = {0o022: (0o644, 0o755), 0o077: (0o600, 0o700), 0o002: (0o664, 0o775)}


@pytest.fixture(params=sorted(MODES), ids=lambda umask: f"umask{umask:03o}")
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_umask_modes(umask, tmp_path):
    file_mode, folder_mode = MODES[umask]
    atomic_write_json(tmp_path / "run" / "metrics.json", {"test": {"iou": 0.5}})
    atomic_write_text(tmp_path / "notes.txt", "hello\n")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {"test": {"iou": 0.5}}
    assert mode(tmp_path / "run" / "metrics.json") == file_mode
    assert mode(tmp_path / "notes.txt") == file_mode
    assert mode(tmp_path / "run") == folder_mode
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["metrics.json", "notes.txt", "run"]  # no temporary left


def test_overwriting_keeps_the_umask_mode_and_the_new_text(umask, tmp_path):
    path = tmp_path / "evaluation.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == MODES[umask][0]


def test_staged_folder_and_files_moved_out_of_it_get_the_umask_modes(umask, tmp_path):
    file_mode, folder_mode = MODES[umask]
    staging = staging_dir_for(tmp_path / "model")
    assert staging.parent == tmp_path and staging.name.startswith(".model.") and mode(staging) == folder_mode
    (staging / "base_model").mkdir()
    for name in ("adapter_model.safetensors", "base_model/model.safetensors"):
        (staging / name).write_bytes(b"weights")
        os.chmod(staging / name, 0o600)  # as safetensors' save_file leaves its files
    move_files_into(staging, tmp_path / "model")
    assert not staging.exists()
    assert {str(p.relative_to(tmp_path)): mode(p) for p in tmp_path.rglob("*")} == {
        "model": folder_mode, "model/base_model": folder_mode,
        "model/adapter_model.safetensors": file_mode, "model/base_model/model.safetensors": file_mode,
    }
    assert (tmp_path / "model" / "base_model" / "model.safetensors").read_bytes() == b"weights"


def test_threads_writing_beside_one_another_never_share_a_temporary(tmp_path):
    errors = []

    def write(index: int) -> None:
        try:
            for round_ in range(20):
                atomic_write_json(tmp_path / f"file{index}.json", {"round": round_})
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"file{index}.json" for index in range(8))
    assert all(json.loads(p.read_text()) == {"round": 19} for p in tmp_path.iterdir())
