"""Issue 35 §3, folders other people made: `translandseg space` copies a cloned model folder without following its
links out of it, writes no id or title into app.py as code, and `qgis-plugin` never writes through a file planted
under a predictable name nor leaves temporary files after a failure."""

from __future__ import annotations

import ast
import os
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from translandseg_hf.app import space
from translandseg_hf.app.space import app_source, write_space
from translandseg_hf.cli import main
from translandseg_hf.qgis_plugin import package
from translandseg_hf.qgis_plugin.package import PLUGIN_NAME, write_plugin

SECRET = "hf_SECRET_TOKEN_never_in_a_space"
REQUIREMENT = "translandseg-hf[app] @ git+https://example.org/translandseg-hf.git"  # no package copy: fast


def model_folder(tmp_path: Path) -> Path:
    """A cloned model folder (its files are only copied, never loaded), and the user's secret outside it."""
    folder = tmp_path / "cloned-model"
    (folder / "sub").mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "sub" / "weights.txt").write_text("weights")
    (tmp_path / "token").write_text(SECRET)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(SECRET)
    return folder


def assert_no_secret_written(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET not in path.read_text(errors="replace"), path


# ------------------------------------------------------------------------------ links in a cloned model folder
# (name of the link inside the model folder, what it points to (`{tmp}` is the folder above the model), the kind)
ESCAPING_LINKS = [
    ("notes.txt", "{tmp}/token", "a file"),  # absolute
    ("notes.txt", "../token", "a file"),  # relative, climbing out
    ("sub/notes.txt", "../../token", "a file"),  # from a subfolder
    ("sub/notes.txt", "../../cloned-model/../token", "a file"),  # through the folder itself, then out
    ("extra", "{tmp}/secrets", "a folder"),  # a folder outside: its files would be copied
    ("extra", "../secrets", "a folder"),
    ("gone.txt", "../nothing-here", "a missing file"),  # dangling now, outside whenever it appears
]


@pytest.mark.parametrize("name, points_to, kind", ESCAPING_LINKS)
def test_a_link_out_of_the_model_folder_is_refused_by_name_and_nothing_is_written(tmp_path, name, points_to, kind):
    folder = model_folder(tmp_path)
    target = points_to.format(tmp=tmp_path)
    (folder / name).symlink_to(target)
    expected = f"{folder / name}: a link to {kind} outside the model folder ({target}), which the Space would carry"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}"):
        write_space(str(folder), tmp_path / "space", requirement=REQUIREMENT, sdk_version="6.0.0")
    assert not (tmp_path / "space").exists()  # refused before anything is written
    assert_no_secret_written(tmp_path / "cloned-model")


def test_the_command_refuses_a_linked_token_with_exit_2(tmp_path, capsys):
    folder = model_folder(tmp_path)
    (folder / "notes.txt").symlink_to(tmp_path / "token")
    assert main(["space", "--model", str(folder), "--output", str(tmp_path / "space"),
                 "--requirement", REQUIREMENT, "--sdk_version", "6.0.0"]) == 2
    assert f"error: {folder / 'notes.txt'}: a link to a file outside the model folder" in capsys.readouterr().err
    assert not (tmp_path / "space").exists()


def test_links_inside_the_model_folder_are_copied_as_relative_links(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "alias.json").symlink_to("adapter_config.json")
    (folder / "sub" / "absolute.txt").symlink_to(folder / "sub" / "weights.txt")  # absolute, but inside
    (folder / "linked-sub").symlink_to("sub")
    output = write_space(str(folder), tmp_path / "space", requirement=REQUIREMENT, sdk_version="6.0.0")
    copy = output / "model"
    assert os.readlink(copy / "alias.json") == "adapter_config.json"
    assert os.readlink(copy / "sub" / "absolute.txt") == "weights.txt"  # into the copy, not the original
    assert os.readlink(copy / "linked-sub") == "sub" and (copy / "linked-sub" / "weights.txt").read_text() == "weights"
    assert (copy / "sub" / "weights.txt").read_text() == "weights" and not (copy / "sub" / "weights.txt").is_symlink()


def test_a_clones_git_folder_is_not_carried(tmp_path):
    """A clone's .git/config may hold the token it was cloned with (`https://user:hf_...@huggingface.co/...`)."""
    folder = model_folder(tmp_path)
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text(f"[remote]\n\turl = https://user:{SECRET}@huggingface.co/user/model\n")
    output = write_space(str(folder), tmp_path / "space", requirement=REQUIREMENT, sdk_version="6.0.0")
    assert sorted(path.name for path in (output / "model").iterdir()) == ["adapter_config.json", "sub"]
    assert_no_secret_written(output)


def test_a_hub_cache_snapshot_is_copied_with_its_files(tmp_path):
    """A model downloaded by huggingface_hub is a snapshot of links to its repository's blobs: still a good input."""
    repository = tmp_path / "hub" / "models--user--landslides"
    (repository / "blobs").mkdir(parents=True)
    (repository / "blobs" / "abc123").write_text("{}")
    snapshot = repository / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "adapter_config.json").symlink_to("../../blobs/abc123")
    (tmp_path / "token").write_text(SECRET)
    (snapshot / "notes.txt").symlink_to(tmp_path / "token")  # but not what lies outside the repository
    with pytest.raises(ValueError, match="notes.txt: a link to a file outside the model folder"):
        write_space(str(snapshot), tmp_path / "space", requirement=REQUIREMENT, sdk_version="6.0.0")
    (snapshot / "notes.txt").unlink()
    output = write_space(str(snapshot), tmp_path / "space", requirement=REQUIREMENT, sdk_version="6.0.0")
    copied = output / "model" / "adapter_config.json"
    assert copied.read_text() == "{}" and not copied.is_symlink()


def test_a_link_out_of_the_package_code_is_refused_too(tmp_path, monkeypatch):
    package_code = tmp_path / "checkout" / "translandseg_hf"
    package_code.mkdir(parents=True)
    (package_code / "__init__.py").write_text("")
    (tmp_path / "token").write_text(SECRET)
    (package_code / "data.txt").symlink_to(tmp_path / "token")
    monkeypatch.setattr(space, "PACKAGE", package_code)
    with pytest.raises(ValueError, match="data.txt: a link to a file outside the translandseg_hf package"):
        write_space("user/landslides", tmp_path / "space", sdk_version="6.0.0")
    assert not (tmp_path / "space").exists()


# ---------------------------------------------------------------------------- ids and values written into app.py
CRAFTED_IDS = [
    'x"); import os; os.system("touch pwned"); ("',
    "x'); import os; os.system('touch pwned'); ('",
    'user/x""" + __import__("os").system("touch pwned") + """',  # closes the docstring
    "user/landslides\nimport os",
    "user/landslides; import os",
    "user/land slides",
    "user/land--slides",
    "user/landslides.git",
]


@pytest.mark.parametrize("model", CRAFTED_IDS)
def test_a_crafted_hub_id_is_refused_before_anything_is_written(tmp_path, model):
    with pytest.raises(ValueError, match=r"is neither a model folder nor a Hub model id: .*(Repo id|repo_id|\.git)"):
        write_space(model, tmp_path / "space", requirement=REQUIREMENT, sdk_version="6.0.0")
    assert not (tmp_path / "space").exists()


def test_the_command_refuses_a_crafted_id_with_exit_2(tmp_path, capsys):
    assert main(["space", "--model", CRAFTED_IDS[0], "--output", str(tmp_path / "space")]) == 2
    assert "is neither a model folder nor a Hub model id" in capsys.readouterr().err
    assert not (tmp_path / "space").exists()


TITLES = [
    'x", max_pixels=1); import os; os.system("touch pwned"); ("',
    "x', max_pixels=1); import os; os.system('touch pwned'); ('",
    '"""',
    "'''",
    "\\",
    'ends with a backslash \\',
    "It's \"the\" title",
    "{max_pixels} {repo_id!r} %s",
    "滑坡 ⛰️ mapping",
]


def launch_call(source: str) -> ast.Call:
    """app.py as a tree: a docstring, imports, and one statement that calls launch_app, with nothing else."""
    tree = ast.parse(source)
    *head, last = tree.body
    assert isinstance(head[0], ast.Expr) and isinstance(head[0].value, ast.Constant)  # the docstring
    assert all(isinstance(statement, ast.ImportFrom) for statement in head[1:])
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
    assert isinstance(last.value.func, ast.Name) and last.value.func.id == "launch_app"
    return last.value


@pytest.mark.parametrize("title", TITLES)
def test_a_title_with_quotes_is_written_as_a_string_and_nothing_else(tmp_path, title):
    output = write_space("user/landslides", tmp_path / "space", title=title, requirement=REQUIREMENT,
                         sdk_version="6.0.0")
    source = (output / "app.py").read_text()
    call = launch_call(source)
    assert [ast.literal_eval(argument) for argument in call.args] == ["user/landslides"]
    assert {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords} == {
        "max_pixels": 50_000_000, "title": title}
    assert sum(isinstance(node, ast.Call) for node in ast.walk(ast.parse(source))) == 1
    assert yaml.safe_load((output / "README.md").read_text().split("---\n")[1])["title"] == title


def test_space_no_urls_writes_an_uploads_only_app(tmp_path):
    assert main(["space", "--model", "user/landslides", "--output", str(tmp_path / "space"), "--no_urls",
                 "--requirement", REQUIREMENT, "--sdk_version", "6.0.0"]) == 0
    call = launch_call((tmp_path / "space" / "app.py").read_text())
    assert {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords} == {
        "max_pixels": 50_000_000, "title": "Landslide mapping", "no_urls": True}


def test_a_local_models_app_holds_only_its_path_and_values(tmp_path):
    call = launch_call(app_source(None, 'a"); import os; ("', 12))
    assert ast.dump(call.args[0]) == ast.dump(ast.parse("Path(__file__).parent / 'model'", mode="eval").body)
    assert {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords} == {
        "max_pixels": 12, "title": 'a"); import os; ("'}


# (argument, value, the message): values that are not one line of text or a whole number
BAD_VALUES = [
    ("title", "Landslides\nimport os", r"the title 'Landslides\\nimport os' must be one line of printable text"),
    ("title", "Landslides\r\n---", "the title .* must be one line of printable text"),
    ("max_pixels", "1); import os; os.system('touch pwned'); (", r"max_pixels .* must be a whole number above 0"),
    ("max_pixels", 0, "max_pixels 0 must be a whole number above 0"),
    ("max_pixels", True, "max_pixels True must be a whole number above 0"),
    ("requirement", "translandseg-hf\n--index-url https://evil.example/simple",
     "--requirement .* must be one line of printable text"),
    ("sdk_version", "6.0.0\nhardware: a100", "--sdk_version .* must be one line of printable text"),
]


@pytest.mark.parametrize("argument, value, message", BAD_VALUES)
def test_values_that_would_break_out_of_their_line_are_refused(tmp_path, argument, value, message):
    arguments = {"requirement": REQUIREMENT, "sdk_version": "6.0.0", argument: value}
    with pytest.raises(ValueError, match=message):
        write_space("user/landslides", tmp_path / "space", **arguments)
    assert not (tmp_path / "space").exists()


# ------------------------------------------------------------------------------------ qgis-plugin's output folder
# (the name planted in the output folder, as a link to the victim: a file or a folder)
PLANTED = [
    (f".{PLUGIN_NAME}.zip.partial", "file"),  # the old fixed name of the zip being written
    (f".{PLUGIN_NAME}.partial", "folder"),  # the old fixed name of the folder being written
    (f"{PLUGIN_NAME}.zip", "file"),  # the zip itself: replaced, never written through
    (PLUGIN_NAME, "folder"),  # the folder itself
]


@pytest.mark.parametrize("planted, kind", PLANTED)
def test_a_planted_link_is_never_written_through(tmp_path, planted, kind):
    output, victim = tmp_path / "out", tmp_path / "victim"
    output.mkdir()
    if kind == "file":
        victim.write_bytes(b"the victim's own bytes")
    else:
        victim.mkdir()
        (victim / "keep.txt").write_text("kept")
    (output / planted).symlink_to(victim)
    folder, archive = write_plugin(output)
    if kind == "file":
        assert victim.read_bytes() == b"the victim's own bytes"
    else:
        assert [path.name for path in victim.iterdir()] == ["keep.txt"]
    assert folder.is_dir() and not folder.is_symlink() and (folder / "metadata.txt").is_file()
    with zipfile.ZipFile(archive) as bundle:
        assert f"{PLUGIN_NAME}/metadata.txt" in bundle.namelist()
    assert not list(output.glob("*.tmp"))


def test_a_link_planted_where_the_old_plugin_was_put_aside_is_never_written_through(tmp_path):
    output, victim = tmp_path / "out", tmp_path / "victim"
    output.mkdir()
    victim.mkdir()
    (victim / "keep.txt").write_text("kept")
    write_plugin(output)  # an earlier run's plugin, which the next run puts aside before deleting it
    (output / f".{PLUGIN_NAME}.replaced").symlink_to(victim)  # the aside folder's old fixed name
    folder, _ = write_plugin(output)
    assert [path.name for path in victim.iterdir()] == ["keep.txt"]
    assert (folder / "metadata.txt").is_file() and not list(output.glob(f".{PLUGIN_NAME}.*.replaced"))


def fail(*args, **kwargs):
    raise OSError(28, "No space left on device (injected)")


# where a run fails: (object, attribute, whether an earlier run's plugin is there to be replaced)
FAILURES = [
    (zipfile.ZipFile, "write", False),  # in the middle of the zip
    (zipfile.ZipFile, "write", True),
    (package, "stamp_version", False),  # with the folder half copied
    (package, "replace_folder", True),  # putting the new folder in place of the old
]


@pytest.mark.parametrize("owner, attribute, earlier_run", FAILURES)
def test_a_failed_run_leaves_no_temporary_files(tmp_path, monkeypatch, owner, attribute, earlier_run):
    output = tmp_path / "out"
    output.mkdir()
    if earlier_run:
        write_plugin(output)
    before = sorted(path.name for path in output.iterdir())
    monkeypatch.setattr(owner, attribute, fail)
    with pytest.raises(OSError, match="No space left on device"):
        write_plugin(output)
    assert sorted(path.name for path in output.iterdir()) == before
