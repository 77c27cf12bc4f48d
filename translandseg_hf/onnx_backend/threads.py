"""One intra-op thread count for torch and onnxruntime when mapping, so `--backend onnxruntime` is never slower than
torch for want of threads (or the other way round).

The count is the physical cores this process may run on (hyper-threads share a core's FMA units: more threads than
cores only contend for them), or the environment variable TRANSLANDSEG_NUM_THREADS. `predict` sets torch's count to
it (`torch.set_num_threads`) when it loads the model, and every onnxruntime session takes torch's count
(`runtime.start_session`), so both run the same number. Physical cores are read from Linux's CPU topology in sysfs
(psutil is not a dependency); where that is missing, `os.cpu_count()`.
"""

from __future__ import annotations

import os
from pathlib import Path

THREADS_VARIABLE = "TRANSLANDSEG_NUM_THREADS"
CPU_SYSFS = Path("/sys/devices/system/cpu")


def usable_cpus() -> set[int]:
    """The logical CPUs this process may run on (its affinity, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int] | None = None, sysfs: Path = CPU_SYSFS) -> int:
    """Distinct (package, core) pairs among `cpus` (default: `usable_cpus`); os.cpu_count() without a topology."""
    cpus = usable_cpus() if cpus is None else cpus
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus) or os.cpu_count() or 1
    return len(cores) or os.cpu_count() or 1


def intra_op_threads() -> int:
    """TRANSLANDSEG_NUM_THREADS where set (a whole number of at least 1), else the physical cores."""
    given = os.environ.get(THREADS_VARIABLE, "").strip()
    if not given:
        return physical_cores()
    if not given.isdigit() or int(given) < 1:
        raise ValueError(f"{THREADS_VARIABLE}={given!r}: give the intra-op threads as a whole number of at least 1, "
                         "or unset it for the physical cores.")
    return int(given)


def use_intra_op_threads() -> int:
    """torch's intra-op threads set to `intra_op_threads()` (onnxruntime sessions started after take the same)."""
    import torch

    threads = intra_op_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
