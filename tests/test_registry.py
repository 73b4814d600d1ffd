"""Registry: models identified by ONNX signature, unusable files listed with their reason."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import DATA
from doubles import build_arcface, build_dfm, build_inswapper, save, write_doubles

from core import registry
from core.cli import main
from core.errors import ModelFileError
from core.modelfiles import DETECTOR_SHORT
from core.swap.dfm import DFMSwapper
from core.swap.inswapper import InswapperSwapper


@pytest.fixture(autouse=True)
def _no_user_folders(monkeypatch):
    monkeypatch.delenv(registry.ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("models")
    write_doubles(path, resolution=96, broken=True)
    return path


def _by_name(entries):
    return {e.name: e for e in entries}


def test_each_double_is_identified_by_signature(folder):
    entries = _by_name(registry.scan([folder]))
    dfm, amp = entries["double_96"], entries["double_amp_96"]
    assert (dfm.kind, dfm.resolution, dfm.morph, dfm.usable) == ("dfm", 96, False, True)
    assert (amp.kind, amp.resolution, amp.morph, amp.usable) == ("dfm", 96, True, True)
    swapper = entries["inswapper_128"]
    assert swapper.kind == "inswapper" and swapper.is_swapper
    assert swapper.embedder == (folder / "w600k_r50.onnx").resolve()
    embedder = entries["w600k_r50"]
    assert embedder.kind == "arcface" and embedder.usable and not embedder.is_swapper


@pytest.fixture
def no_shipped_models(tmp_path_factory, monkeypatch):
    """models/ swapped for an empty folder: a user's own embedder there must not pair."""
    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path_factory.mktemp("empty"))


def test_names_do_not_decide_the_kind(tmp_path, no_shipped_models):
    save(build_dfm(64), tmp_path / "inswapper_128.onnx")  # a DFM with a misleading name
    save(build_inswapper(), tmp_path / "face.dfm")
    entries = _by_name(registry.scan([tmp_path]))
    assert entries["inswapper_128"].kind == "dfm"
    assert entries["face"].kind == "inswapper"
    assert not entries["face"].usable and "embedder" in entries["face"].reason


def test_unusable_files_are_listed_with_their_reason(folder):
    entries = _by_name(registry.scan([folder]))
    assert entries["truncated"].kind == "unusable"
    assert "truncated" in entries["truncated"].reason
    assert entries["not_onnx"].reason == "not an ONNX file"
    assert entries["foreign"].reason.startswith("foreign signature: inputs image[1, 3, 64, 64]")
    for name in ("truncated", "not_onnx", "foreign"):
        assert not entries[name].usable and "\n" not in entries[name].reason


def test_inswapper_without_embedder_is_unusable(tmp_path, no_shipped_models):
    save(build_inswapper(), tmp_path / "inswapper_128.onnx")
    entry = _by_name(registry.scan([tmp_path]))["inswapper_128"]
    assert not entry.usable and "ArcFace embedder" in entry.reason
    with pytest.raises(ModelFileError, match="ArcFace embedder"):
        registry.resolve("inswapper_128", [tmp_path])
    # An embedder in any scanned folder pairs it.
    other = tmp_path / "elsewhere"
    save(build_arcface(), other / "arc.onnx")
    entry = _by_name(registry.scan([tmp_path]))["inswapper_128"]
    assert entry.usable and entry.embedder == (other / "arc.onnx").resolve()


def test_inswapper_with_a_wrong_last_initializer(tmp_path):
    model = build_inswapper()
    emap = model.graph.initializer.pop()
    model.graph.initializer.insert(0, emap)  # emap no longer last
    save(model, tmp_path / "reordered.onnx")
    entry = _by_name(registry.scan([tmp_path]))["reordered"]
    assert entry.kind == "unusable" and "emap" in entry.reason


def test_builtin_detectors_are_not_models_and_personas_are():
    entries = registry.scan()
    names = [e.name for e in entries]
    assert "persona:default" in names
    assert DETECTOR_SHORT.removesuffix(".onnx") not in names
    assert all(e.path is None or "builtin" not in e.path.parts for e in entries)


def test_env_var_and_extra_dirs_are_scanned(folder, tmp_path, monkeypatch):
    save(build_dfm(64), tmp_path / "from_env.dfm")
    monkeypatch.setenv(registry.ENV_VAR, f"{tmp_path}{registry.os.pathsep}/no/such/folder")
    names = [e.name for e in registry.scan([folder])]
    assert "from_env" in names and "double_96" in names
    dirs = registry.model_dirs([folder])
    assert dirs[0] == registry.MODELS_DIR.resolve() and tmp_path.resolve() in dirs


def test_same_stem_in_two_folders_gets_two_names(tmp_path):
    save(build_dfm(32), tmp_path / "a" / "face.dfm")
    save(build_dfm(64), tmp_path / "b" / "face.onnx")
    entries = _by_name(registry.scan([tmp_path]))
    assert entries["face"].resolution == 32 and entries["b/face"].resolution == 64
    assert registry.resolve("b/face", [tmp_path]).resolution == 64


def test_resolve_by_name_and_by_path(folder):
    assert registry.resolve("double_amp_96", [folder]).morph
    by_path = registry.resolve(str(folder / "inswapper_128.onnx"))
    assert by_path.kind == "inswapper"
    assert by_path.embedder == (folder / "w600k_r50.onnx").resolve()  # paired from its folder
    assert registry.resolve("persona:default").kind == "persona"
    assert registry.resolve("default").name == "persona:default"
    # a file name alone is found in the models folders
    assert registry.resolve("double_amp_96.dfm", [folder]).path == \
        (folder / "double_amp_96.dfm").resolve()


def test_resolve_errors_name_the_problem(folder, tmp_path):
    with pytest.raises(ModelFileError, match="unknown model 'nope'; available: persona:default"):
        registry.resolve("nope", [folder])
    with pytest.raises(ModelFileError, match="truncated"):
        registry.resolve("truncated", [folder])
    with pytest.raises(ModelFileError, match="not an ONNX file"):
        registry.resolve(str(folder / "not_onnx.onnx"))
    with pytest.raises(ModelFileError, match="foreign signature"):
        registry.resolve(str(folder / "foreign.onnx"))
    with pytest.raises(ModelFileError, match=f"not found: .* \\(looked for {tmp_path}"):
        registry.resolve(str(tmp_path / "missing.dfm"))
    # a bare file name: where it was looked for, the models folders included
    looked = f"not found: missing.dfm .looked for .*{folder.resolve()}/missing.dfm"
    with pytest.raises(ModelFileError, match=looked):
        registry.resolve("missing.dfm", [folder])
    with pytest.raises(ModelFileError, match=f"models searched in .*{folder.resolve()}"):
        registry.resolve("nope", [folder])
    with pytest.raises(ModelFileError, match="ArcFace embedder, not a swap model"):
        registry.resolve("w600k_r50", [folder])
    with pytest.raises(ModelFileError, match="no model"):
        registry.resolve("  ")


def test_identification_is_cached_per_file_version(tmp_path):
    path = save(build_dfm(64), tmp_path / "m.dfm")
    first = registry.identify(path)
    assert registry.identify(path) is first
    save(build_dfm(32, morph=True), path)  # replaced on disk: new size
    second = registry.identify(path)
    assert second.resolution == 32 and second.morph


def test_load_swapper_builds_each_family(folder, tmp_path):
    dfm = registry.load_swapper(registry.resolve("double_96", [folder]))
    assert isinstance(dfm, DFMSwapper) and dfm.resolution == 96
    reference = tmp_path / "ref.jpg"
    shutil.copy(DATA / "grace_hopper.jpg", reference)
    swap = registry.load_swapper(registry.resolve("inswapper_128", [folder]),
                                 reference=str(reference))
    assert isinstance(swap, InswapperSwapper) and swap.provider == "CPUExecutionProvider"
    persona = registry.load_swapper(registry.resolve("persona:default"))
    assert persona.name == "persona:default" and hasattr(persona, "swap")
    with pytest.raises(ModelFileError, match="not a usable swap model"):
        registry.load_swapper(_by_name(registry.scan([folder]))["w600k_r50"])


def test_models_command_json_and_text(folder, capsys):
    assert main(["models", "--json", "--dir", str(folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    kinds = {m["name"]: (m["kind"], m["usable"]) for m in report["models"]}
    assert kinds["double_96"] == ("dfm", True)
    assert kinds["foreign"] == ("unusable", False)
    assert str(folder.resolve()) in report["dirs"]
    assert main(["models", "--dir", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "unusable files:" in text and "not an ONNX file" in text
    assert "inswapper 128px, embedder w600k_r50.onnx" in text


def test_user_dirs_add_a_models_folder_for_the_whole_process(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    write_doubles(tmp_path)
    with pytest.raises(ModelFileError, match="unknown model"):
        registry.resolve("double_224")
    registry.set_user_dirs([str(tmp_path)])
    try:
        assert registry.resolve("double_224").kind == "dfm"
        assert tmp_path.resolve() in registry.model_dirs()
    finally:
        registry.set_user_dirs([])
