"""predict runs torch and onnxruntime on one intra-op thread count (issue 42, item 3): the physical cores (read from
Linux's CPU topology), or TRANSLANDSEG_NUM_THREADS; so --backend onnxruntime is never slower for want of threads."""

from __future__ import annotations

import pytest
import torch

from translandseg_hf.inference.runner import load_model
from translandseg_hf.onnx_backend.threads import THREADS_VARIABLE, intra_op_threads, physical_cores

pytest.importorskip("onnxruntime")


@pytest.fixture
def restored_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_torch_and_onnxruntime_run_the_same_threads(rgb_model, monkeypatch, restored_threads):
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    torch.set_num_threads(2)
    load_model(str(rgb_model), "torch")
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    exported = load_model(str(rgb_model), "onnxruntime")
    assert torch.get_num_threads() == 1 == exported.session.get_session_options().intra_op_num_threads
    assert exported.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def write_topology(root, cores_of_cpus):
    for cpu, (package, core) in enumerate(cores_of_cpus):
        topology = root / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")


def test_physical_cores_count_hyperthreads_once(tmp_path):
    write_topology(tmp_path, [(0, 0), (0, 1), (0, 0), (0, 1), (1, 0), (1, 0)])  # 2 packages, 3 cores, 6 threads
    assert physical_cores(set(range(6)), tmp_path) == 3
    assert physical_cores({0, 2}, tmp_path) == 1  # the process may run on one core's two threads
    assert physical_cores({0, 1, 7}, tmp_path) == 3  # no topology for cpu7: the usable CPUs, counted


@pytest.mark.parametrize("given", ["0", "two", "-1"])
def test_a_thread_count_that_is_not_a_whole_number_is_refused(monkeypatch, given):
    monkeypatch.setenv(THREADS_VARIABLE, given)
    with pytest.raises(ValueError, match=rf"{THREADS_VARIABLE}='{given}': give the intra-op threads as a whole "
                                         "number of at least 1"):
        intra_op_threads()


def test_without_the_variable_the_physical_cores(monkeypatch):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    assert intra_op_threads() == physical_cores()
