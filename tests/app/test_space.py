"""`translandseg space`: the Space's files, and a written Space installed in a fresh venv from its folder alone (as
Hugging Face installs it) and serving its page. translandseg-hf is not on PyPI, so the Space carries its code."""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

gr = pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e '.[app]')")

from translandseg_hf.app.session import Mapper  # noqa: E402 (gradio first: without it the module skips)
from translandseg_hf.app import space  # noqa: E402
from translandseg_hf.app.space import write_space  # noqa: E402
from translandseg_hf.cli import main  # noqa: E402


def space_metadata(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_a_space_for_a_hub_model_names_it_in_its_metadata_and_app(tmp_path, capsys):
    assert main(["space", "--model", "user/landslides", "--output", str(tmp_path / "space")]) == 0
    files = sorted(p.name for p in (tmp_path / "space").iterdir())
    assert files == ["README.md", "app.py", "requirements.txt", "translandseg_hf"]
    metadata = space_metadata(tmp_path / "space" / "README.md")
    assert metadata["sdk"] == "gradio" and metadata["app_file"] == "app.py"
    assert metadata["sdk_version"] == gr.__version__ and metadata["models"] == ["user/landslides"]
    assert metadata["license"] == "apache-2.0" and metadata["title"] and metadata["emoji"]
    app = (tmp_path / "space" / "app.py").read_text()
    ast.parse(app)
    assert "launch_app('user/landslides', max_pixels=50000000" in app
    assert "wrote the Space" in capsys.readouterr().out


def test_a_space_for_a_local_model_carries_it_and_its_app_loads_it(tmp_path, tiny_sam_folder, monkeypatch):
    import runpy

    import translandseg_hf.app.ui as ui

    output = write_space(str(tiny_sam_folder), tmp_path / "space", title="Bijie landslides", max_pixels=1000)
    assert "models" not in space_metadata(output / "README.md")
    assert (output / "model" / "adapter_config.json").is_file()
    launched = {}
    monkeypatch.setattr(ui, "launch_app", lambda model, **kwargs: launched.update(model=model, **kwargs))
    runpy.run_path(str(output / "app.py"), run_name="__main__")
    assert launched == {"model": output / "model", "max_pixels": 1000, "title": "Bijie landslides"}
    assert Mapper(launched["model"], "cpu").contract.tile_size == 256  # the copied model loads


def test_a_space_is_not_written_over_other_files(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("mine")
    assert main(["space", "--model", "user/landslides", "--output", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_space("./no/such/model", tmp_path / "space")


def test_a_space_is_not_written_into_or_over_its_model_folder(tiny_sam_folder, tmp_path):
    with pytest.raises(ValueError, match="overlaps the model folder"):
        write_space(str(tiny_sam_folder), tiny_sam_folder / "space")
    model = shutil.copytree(tiny_sam_folder, tmp_path / "model")  # where the Space would put its copy
    with pytest.raises(ValueError, match="overlaps the model folder"):
        write_space(str(model), tmp_path, overwrite=True)
    assert (model / "adapter_config.json").is_file()


# --------------------------------------------------------------------------------------- what the Space carries
ROOT = Path(__file__).resolve().parents[2]


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]  # not the installed metadata


def pyproject_app_requirements() -> set[str]:
    """What `pip install translandseg-hf[app]` asks for, as pyproject.toml says."""
    return {str(Requirement(line)) for line in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["app"]}


def requirement_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_a_space_carries_the_package_code_and_requires_its_dependencies(tmp_path):
    output = write_space("user/landslides", tmp_path / "space")
    carried = output / "translandseg_hf"
    assert (carried / "app" / "ui.py").read_bytes() == (ROOT / "translandseg_hf" / "app" / "ui.py").read_bytes()
    assert (carried / "model_card.md").is_file()  # package data travels too
    assert not list(output.rglob("__pycache__"))
    lines = requirement_lines(output / "requirements.txt")
    assert {str(Requirement(line)) for line in lines} == pyproject_app_requirements()
    assert "gradio<7,>=6" in lines and "playwright>=1.40" not in lines  # the browser test's, not the app's
    assert not any(line.startswith("translandseg") for line in lines)
    readme = (output / "README.md").read_text()
    assert f"its code (translandseg-hf {PROJECT['version']}) is carried in `translandseg_hf/`" in readme


def test_a_named_requirement_replaces_the_carried_code(tmp_path, capsys):
    output = write_space("user/landslides", tmp_path / "space")  # an earlier run that carried the code
    line = "translandseg-hf[app] @ git+https://example.org/translandseg-hf.git@v0.1.0"
    assert main(["space", "--model", "user/landslides", "--output", str(output), "--overwrite",
                 "--requirement", line]) == 0
    assert (output / "requirements.txt").read_text() == line + "\n"
    assert not (output / "translandseg_hf").exists()  # it would shadow the named source
    assert f"translandseg-hf is installed from `{line}`" in (output / "README.md").read_text()
    assert "README.md, app.py, requirements.txt;" in capsys.readouterr().out


def test_a_space_is_not_written_over_the_package_it_copies(tmp_path, monkeypatch):
    package = tmp_path / "checkout" / "translandseg_hf"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("# the source\n")
    monkeypatch.setattr(space, "PACKAGE", package)
    for output in (package.parent, package / "space"):
        with pytest.raises(ValueError, match="overlaps the translandseg_hf package"):
            write_space("user/landslides", output, overwrite=True)
    assert sorted(p.name for p in package.parent.rglob("*")) == ["__init__.py", "translandseg_hf"]


def test_without_package_metadata_the_space_asks_for_a_requirement(tmp_path, monkeypatch):
    monkeypatch.setattr(space, "DISTRIBUTION", "translandseg-hf-not-installed")
    with pytest.raises(ValueError, match="translandseg-hf-not-installed is not installed.*pass --requirement"):
        write_space("user/landslides", tmp_path / "space")
    assert not (tmp_path / "space").exists()  # refused before anything is written



# ------------------------------------------------------------------------------ installed in a fresh venv, serving
def fresh_venv(folder: Path) -> Path:
    """A new venv that sees this machine's installed packages through a .pth file, but not the editable
    translandseg_hf (its finder is a .pth of its own, which a path line does not run): pip then has nothing to fetch."""
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as error:
        pytest.skip(f"cannot create a venv here: {error}")
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    machine = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "machine-site-packages.pth").write_text("\n".join(sorted(machine)) + "\n")
    return python


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_page(url: str, app: subprocess.Popen, log: Path, timeout: float) -> int:
    """The HTTP status of `url` once the app answers; fails if it exits first or does not answer in `timeout` s."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never through a proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert app.poll() is None, f"app.py exited with {app.returncode}:\n{log.read_text()}"
        try:
            with opener.open(url, timeout=5) as response:
                return response.status
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app.py did not answer {url} within {timeout} s:\n{log.read_text()}")


def test_a_written_space_installs_from_its_folder_alone_and_serves(tmp_path, tiny_sam_folder):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not installed")  # the fresh venv runs this machine's pip, through its .pth file
    output = write_space(str(tiny_sam_folder), tmp_path / "space", max_pixels=10_000)
    python = fresh_venv(tmp_path / "venv")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    probe = [str(python), "-c", "import translandseg_hf; print(translandseg_hf.__file__)"]
    outside = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "No module named 'translandseg_hf'" in outside.stderr  # the editable source is out of this venv's reach

    # As Spaces build: requirements.txt mounted alone, pip run in the app's folder before its files are copied in;
    # then as the Space's README says to run it locally, in the Space folder.
    for folder in ("mount", "home-user-app"):
        (tmp_path / folder).mkdir()
    mounted = Path(shutil.copy(output / "requirements.txt", tmp_path / "mount"))
    for requirements, folder in ((mounted, tmp_path / "home-user-app"), (Path("requirements.txt"), output)):
        install = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "-r", str(requirements)],
                                 cwd=folder, env=env, capture_output=True, text=True)
        assert install.returncode == 0, install.stdout + install.stderr
        assert "Requirement already satisfied: gradio<7,>=6" in install.stdout
    used = subprocess.run(probe, cwd=output, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(used) == output / "translandseg_hf" / "__init__.py"  # what app.py imports: the Space's copy

    port = free_port()
    env.update(HF_HUB_OFFLINE="1", GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = tmp_path / "app.log"
    with log.open("w") as sink:
        app = subprocess.Popen([str(python), "app.py"], cwd=output, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        assert wait_for_page(f"http://127.0.0.1:{port}/", app, log, timeout=90) == 200
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
