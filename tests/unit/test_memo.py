"""The per-image memo: whole, checked entries; damaged ones miss; pruning; where it lives."""

import os
import sys
import threading
from pathlib import Path

import pytest

from bench.sandbox import run_command
from tests.helpers import ROOT
from transfer.frozen.version import FORWARD_ROOTS, KEY_LEAVES_OUT, forward_code_version
from transfer.memo import code_version as code_version_module
from transfer.memo.code_version import code_version, imported_modules, module_file
from transfer.memo.command import prune
from transfer.memo.store import HEADER, MEMO_ENV, Memo, key, memo_dir


def entry_file(memo: Memo, namespace: str, entry_key: str) -> Path:
    return next((memo.root / namespace).rglob(entry_key))


def test_an_entry_reads_back_and_keys_depend_on_every_part(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "memo")
    entry_key = key("features", "abc", {"view": 1})
    assert memo.get("features", entry_key) is None
    memo.put("features", entry_key, b"payload")
    assert memo.get("features", entry_key) == b"payload"
    assert key("features", "abc", {"view": 2}) != entry_key
    assert key("features", "abd", {"view": 1}) != entry_key
    assert not list((tmp_path / "memo").rglob("*.tmp"))  # no temporary left behind


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) - 3],  # truncated payload
        lambda data: data[: HEADER.size - 1],  # truncated header
        lambda data: b"\0" * len(data),  # overwritten with zeros
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: b"",  # empty
    ],
)
def test_a_damaged_entry_is_a_miss(tmp_path: Path, damage) -> None:
    memo = Memo(tmp_path)
    memo.put("images", "ab12", b"some jpeg bytes")
    file = entry_file(memo, "images", "ab12")
    file.write_bytes(damage(file.read_bytes()))
    assert memo.get("images", "ab12") is None
    memo.put("images", "ab12", b"some jpeg bytes")  # the next computation replaces it
    assert memo.get("images", "ab12") == b"some jpeg bytes"


def test_concurrent_writers_of_one_key_leave_a_whole_entry(tmp_path: Path) -> None:
    memo = Memo(tmp_path)
    payload = os.urandom(1 << 20)
    errors = []

    def write() -> None:
        try:
            memo.put("features", "cafe", payload)
        except Exception as error:
            errors.append(error)

    writers = [threading.Thread(target=write) for _ in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert not errors
    assert memo.get("features", "cafe") == payload
    assert not list(tmp_path.rglob("*.tmp"))


def test_off_stores_nothing(tmp_path: Path) -> None:
    memo = Memo(None)
    memo.put("images", "ab12", b"x")
    assert memo.get("images", "ab12") is None
    assert not memo.has("images", "ab12")


def test_prune_drops_the_least_recently_used_and_stale_temporaries(tmp_path: Path) -> None:
    memo = Memo(tmp_path)
    for index, name in enumerate(("aa01", "aa02", "aa03")):
        memo.put("images", name, bytes(1000))
        os.utime(entry_file(memo, "images", name), (1000 + index, 1000 + index))
    memo.get("images", "aa01")  # used now: the most recent
    temporary = tmp_path / "images" / "aa" / ".aa09.123.tmp"
    temporary.write_bytes(b"half")
    os.utime(temporary, (0, 0))
    deleted, _ = prune(tmp_path, 2 * (1000 + HEADER.size))
    assert deleted == 2  # aa02, the least recently used, and the stale temporary
    assert memo.get("images", "aa01") is not None and memo.get("images", "aa03") is not None
    assert memo.get("images", "aa02") is None and not temporary.exists()


def test_it_lives_at_the_root_dvc_names_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MEMO_ENV, raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    assert memo_dir() == tmp_path / "repo" / ".memo"
    monkeypatch.setenv(MEMO_ENV, str(tmp_path / "shared"))
    assert memo_dir() == tmp_path / "shared"
    monkeypatch.setenv(MEMO_ENV, "off")
    assert memo_dir() is None


# Modules that the stages computing frozen forward passes load but that shape no row: where
# outputs go (cluster, models.files), how a stage runs (distribution: the strategy, whose
# engine is in the key), and training on the rows once they are made. A module the stages
# load that is neither here nor found from FORWARD_ROOTS fails the test below: either it
# shapes rows and the key must see it, or it is named here.
SHAPES_NO_ROW = {
    "transfer.params",  # KEY_LEAVES_OUT: the values that shape rows are keyed themselves
    "transfer.cluster",
    "transfer.distribution",
    "transfer.models.files",
    "transfer.training.backbone",
    "transfer.training.batches",
    "transfer.training.callbacks",
    "transfer.training.head",
}


def test_the_forward_key_holds_every_module_the_stages_load_that_shapes_a_row() -> None:
    """Loaded in a process of its own: what `extract` and the fine-tune actually import."""
    code = (
        "import sys, stages.extract, transfer.training.backbone; "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] == 'transfer'))"
    )
    result = run_command([sys.executable, "-c", code], ROOT)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    keyed = set(imported_modules(*FORWARD_ROOTS, leaving_out=KEY_LEAVES_OUT))
    assert {"transfer.models.backbones", "transfer.views", "transfer.tfdata"} <= keyed
    assert not SHAPES_NO_ROW & keyed, "named as shaping no row, yet in the key"
    assert not loaded - keyed - SHAPES_NO_ROW, "loaded, shapes rows, not in the key"


def test_an_edit_to_a_module_the_key_holds_changes_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = forward_code_version()
    edited = tmp_path / "backbones.py"
    source = module_file("transfer.models.backbones")
    edited.write_text(source.read_text() + "\n# a preprocessing change\n")
    original = code_version_module.module_file

    def redirected(module: str) -> Path:
        return edited if module == "transfer.models.backbones" else original(module)

    monkeypatch.setattr(code_version_module, "module_file", redirected)
    assert forward_code_version() != before
    monkeypatch.setattr(code_version_module, "module_file", original)
    assert forward_code_version() == before


def test_an_edit_to_the_params_module_leaves_the_forward_key_as_it_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before, whole_before = forward_code_version(), code_version(*FORWARD_ROOTS)
    edited = tmp_path / "params.py"
    edited.write_text(module_file("transfer.params").read_text() + "\n# a new param\n")
    original = code_version_module.module_file
    monkeypatch.setattr(
        code_version_module,
        "module_file",
        lambda module: edited if module == "transfer.params" else original(module),
    )
    assert forward_code_version() == before
    assert code_version(*FORWARD_ROOTS) != whole_before  # the edit is seen, then left out


def test_the_import_check_and_the_resized_images_key_their_own_code() -> None:
    assert imported_modules("transfer.image_files") == ["transfer", "transfer.image_files"]
    encoding = imported_modules("transfer.records.encoding")
    assert {"transfer.image_files", "transfer.records.schema"} <= set(encoding)
    assert "transfer.models.backbones" not in encoding  # resizing runs no model
