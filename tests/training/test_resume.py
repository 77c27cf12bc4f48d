"""A run SIGKILLed at chosen points and resumed ends with the weights of an uninterrupted run, bit for bit; so does a
run whose disk fills while it saves a checkpoint, resumed from the checkpoint before.

Each kill runs recipes/train.py's `main` in a process that wraps one library function to SIGKILL itself at its N-th
call (or to limit the size of files written from then on, a full disk as GDAL, safetensors and torch see it), so the
fault point is exact and the library carries no test hook. Resumes run in this process, with the tiny
demo config of helpers/training.py (5 training batches an epoch, 3 epochs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, load_recipe
from helpers.training import TINY, comparable

from translandseg_hf.training import find_latest_checkpoint
from translandseg_hf.training.checkpoints import COMPLETE_MARKER, rotate_checkpoints

THREADS = 2  # every run computes with 2 CPU threads: on a CPU the thread count orders float sums
# One child process imports the library once, then forks a grandchild per kill point, which wraps one library
# function to SIGKILL itself at its N-th call (nothing has run torch before the fork, so no thread pool is copied).
KILLER = textwrap.dedent(f"""
    import importlib, json, os, resource, signal, sys
    sys.path.insert(0, {str(ROOT / "tests")!r})
    from conftest import load_recipe
    from translandseg_hf.errors import run_reporting_errors
    import translandseg_hf.evaluation, translandseg_hf.modeling_translandseg, translandseg_hf.training.loop
    recipe = load_recipe("train")

    def run_until_killed(module_name, name, call, when, argv):
        module, calls = importlib.import_module(module_name), []
        real = getattr(module, name)

        def hooked(*args, **kwargs):
            calls.append(None)
            if len(calls) == call and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            if len(calls) == call and when == "disk full":  # from here on, writes past 1 kB fail with EFBIG
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
                return real(*args, **kwargs)
            result = real(*args, **kwargs)
            if len(calls) == call:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(module, name, hooked)
        run_reporting_errors(lambda: recipe.main(argv))  # as `python recipes/train.py` ends: one error line

    signals = []
    for point in json.loads(sys.argv[1]):
        pid = os.fork()
        if pid == 0:
            try:
                run_until_killed(*point)
            finally:
                os._exit(1)  # not killed: the parent reports it
        _, status = os.waitpid(pid, 0)
        signals.append(os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status))
    print(json.dumps(signals))
""")
# kill point -> (module, function, its call that dies, before or after the call, extra config)
KILL_POINTS = {
    "mid-epoch": ("translandseg_hf.training.loop", "check_finite", 7, "before", []),  # epoch 2's second batch
    "during evaluation": ("translandseg_hf.evaluation", "per_sample_counts", 2, "before", []),  # epoch 2's validation
    # epoch 2's checkpoint: its trainable tensors are written, its optimiser state and marker are not
    "during a checkpoint save": ("translandseg_hf.training.loop", "save_file", 2, "after", []),
    # a step checkpoint at global step 6 (epoch 2, batch 1), killed at epoch 2's fourth batch
    "after a step checkpoint": ("translandseg_hf.training.loop", "check_finite", 9, "before",
                                ["--checkpointing_steps", "3"]),
}


def train(output_dir, *extra):
    return load_recipe("train").main([*TINY, "--epochs", "3", "--output_dir", str(output_dir), *extra])


def final_weights(output_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The trainable tensors at the end of training (the last checkpoint) and those saved as the model."""
    return {"end of training": load_file(find_latest_checkpoint(output_dir) / "trainable_parameters.safetensors"),
            "model/": load_file(output_dir / "model" / "adapter_model.safetensors")}


def assert_bitwise_equal(weights: dict, expected: dict) -> None:
    for where, tensors in expected.items():
        differing = [name for name, tensor in tensors.items() if not torch.equal(weights[where][name], tensor)]
        assert not differing, f"{where}: {len(differing)} tensors differ, e.g. {differing[:3]}"


@pytest.fixture(scope="module", autouse=True)
def fixed_thread_count():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    return train(output_dir), final_weights(output_dir)


@pytest.fixture(scope="module")
def killed(reference, tmp_path_factory):
    """One killed run per kill point, all from one child process (importing the library is most of their time)."""
    runs, points = {}, []
    for point, (module, function, call, when, extra) in KILL_POINTS.items():
        runs[point] = (tmp_path_factory.mktemp("killed"), extra)
        points.append([module, function, call, when, [*TINY, "--epochs", "3", "--output_dir", str(runs[point][0]),
                                                      *extra]])
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(THREADS)}
    result = subprocess.run([sys.executable, "-c", KILLER, json.dumps(points)], env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == [signal.SIGKILL] * len(points), result.stderr[-3000:]
    spare = tmp_path_factory.mktemp("spare")  # the mid-epoch kill again, for the thread-count tests
    for name in ("deterministic", "warned"):
        shutil.copytree(runs["mid-epoch"][0], spare / name)
    return runs, spare


def progress_of(checkpoint: Path) -> dict:
    return json.loads((checkpoint / COMPLETE_MARKER).read_text())["progress"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_run_resumes_to_bitwise_the_same_weights(point, killed, reference):
    expected_metrics, expected_weights = reference
    output_dir, extra = killed[0][point]
    latest = progress_of(find_latest_checkpoint(output_dir))
    if point == "after a step checkpoint":  # the resume starts inside epoch 2, past its first batch
        assert (latest["epoch"], latest["step_in_epoch"], latest["global_step"]) == (1, 1, 6)
    else:  # the resume starts from epoch 1's checkpoint and trains epoch 2 again
        assert (latest["epoch"], latest["step_in_epoch"]) == (1, 0)
    if point == "during a checkpoint save":
        half_written = output_dir / "checkpoints" / "checkpoint_1"
        assert sorted(p.name for p in half_written.iterdir()) == ["trainable_parameters.safetensors"]
    resumed = train(output_dir, "--resume_from_checkpoint", "latest", *extra)
    assert comparable(resumed) == comparable(expected_metrics)
    assert_bitwise_equal(final_weights(output_dir), expected_weights)


def test_deterministic_resumes_with_the_checkpoints_thread_count(killed, reference):
    """`accelerate launch` runs with OMP_NUM_THREADS=1: --deterministic computes with the checkpoint's 2 threads."""
    output_dir = killed[1] / "deterministic"
    torch.set_num_threads(1)
    try:
        train(output_dir, "--resume_from_checkpoint", "latest", "--deterministic", "true")
        assert torch.get_num_threads() == 1  # the caller's setting comes back
    finally:
        torch.set_num_threads(THREADS)
    assert_bitwise_equal(final_weights(output_dir), reference[1])
    assert progress_of(find_latest_checkpoint(output_dir))["num_threads"] == THREADS


def test_another_thread_count_warns_and_stays_within_rounding(killed, reference):
    """Without --deterministic a resume with 1 thread is warned about; its weights drift by float rounding only
    (7e-5 here after two epochs; 9e-3 after 15 epochs of the demo, with the same scores)."""
    output_dir = killed[1] / "warned"
    torch.set_num_threads(1)
    try:
        with pytest.warns(UserWarning, match=r"computed with 2 CPU threads and this process has 1: .* Pass "
                                             r"--deterministic true to resume with 2 threads"):
            train(output_dir, "--resume_from_checkpoint", "latest")
    finally:
        torch.set_num_threads(THREADS)
    weights = final_weights(output_dir)["end of training"]
    drift = max((weights[name] - tensor).abs().max().item() for name, tensor in reference[1]["end of training"].items())
    assert drift < 1e-3


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_last_one_and_latest_resumes_from_it(reference, tmp_path):
    output_dir = tmp_path / "run"
    point = ["translandseg_hf.training.loop", "save_checkpoint", 2, "disk full",
             [*TINY, "--epochs", "3", "--output_dir", str(output_dir)]]  # epoch 2's checkpoint
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(THREADS)}
    result = subprocess.run([sys.executable, "-c", KILLER, json.dumps([point])], env=environment,
                            capture_output=True, text=True, timeout=300)
    assert json.loads(result.stdout.splitlines()[-1]) == [-1], result.stderr[-3000:]  # exit status 1, not a crash
    checkpoints = output_dir / "checkpoints"
    error = next((line for line in result.stderr.splitlines() if line.startswith("error:")), result.stderr[-3000:])
    assert re.fullmatch(
        rf"error: {re.escape(str(checkpoints / 'checkpoint_1'))}: saving the checkpoint failed \(.*File too large.*\); "
        rf"is the disk full\? The incomplete checkpoint was removed; {re.escape(str(checkpoints / 'checkpoint_0'))} "
        r"is the last complete one: --resume_from_checkpoint latest continues from it\.", error), error
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in checkpoints.iterdir()) == ["checkpoint_0"]  # no partial folder is left
    assert progress_of(checkpoints / "checkpoint_0")["epoch"] == 1

    train(output_dir, "--resume_from_checkpoint", "latest")
    assert_bitwise_equal(final_weights(output_dir), reference[1])


def test_rotation_keeps_the_newest_complete_checkpoints_and_never_an_older_partial_one(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    for number, complete in ((0, True), (1, False), (2, True), (3, True), (4, False)):
        (checkpoints / f"checkpoint_{number}").mkdir(parents=True)
        if complete:
            (checkpoints / f"checkpoint_{number}" / COMPLETE_MARKER).write_text("{}")
    removed = rotate_checkpoints(tmp_path, keep=2)
    assert sorted(path.name for path in removed) == ["checkpoint_0", "checkpoint_1"]
    assert sorted(path.name for path in checkpoints.iterdir()) == ["checkpoint_2", "checkpoint_3", "checkpoint_4"]
    assert rotate_checkpoints(tmp_path, keep=2) == []  # only two complete ones are left
    assert rotate_checkpoints(tmp_path, keep=None) == [] and rotate_checkpoints(tmp_path, keep=1)[0].name == (
        "checkpoint_2")  # None keeps all; 1 keeps the newest complete one
