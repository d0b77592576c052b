"""Incremental scans: unchanged files untouched, renames keep user controls, bad folders, interruptions."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from helpers_catalog import civitai_version, kohya_metadata, touch, write_json, write_lora

from stylus_ext import sdk
from stylus_ext.catalog import store
from stylus_ext.catalog.db import Catalog, CatalogError
from stylus_ext.catalog.scan import scan_folders


@pytest.fixture
def folder(tmp_path):
    lora = tmp_path / "lora"
    for i in range(5):
        write_lora(lora / f"style_{i}.safetensors", kohya_metadata(f"style_alias_{i}"), seed=i)
    write_json(lora / "style_0.json", {"activation text": "first", "sd version": "SD1"})
    return lora


@pytest.fixture
def reads(monkeypatch):
    """Paths the `local` source actually read (the plugin calls sdk.read_lora_card)."""
    seen: list[str] = []
    original = sdk.read_lora_card

    def spy(path, **kw):
        seen.append(os.path.basename(path))
        return original(path, **kw)

    monkeypatch.setattr(sdk, "read_lora_card", spy)
    return seen


def test_rescan_reads_only_changed_files(tmp_path, folder, plugins, reads):
    catalog = Catalog(tmp_path / "c.db")
    first = scan_folders(catalog, [folder], plugins=plugins)
    assert (first.added, first.unchanged) == (5, 0) and len(reads) == 5
    reads.clear()
    again = scan_folders(catalog, [folder], plugins=plugins)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 5, 0)
    assert reads == []
    # edit one LoRA's user metadata: only that one is read again
    write_json(folder / "style_0.json", {"activation text": "second", "sd version": "SD1"})
    touch(folder / "style_0.json")
    write_lora(folder / "style_3.safetensors", kohya_metadata("style_alias_3", ss_network_dim="16"), seed=33)
    touch(folder / "style_3.safetensors")
    third = scan_folders(catalog, [folder], plugins=plugins)
    assert sorted(reads) == ["style_0.safetensors", "style_3.safetensors"]
    assert (third.updated, third.unchanged) == (2, 3)
    updated = next(a for a in catalog.adapters() if a.card.path.endswith("style_0.safetensors"))
    assert updated.card.trigger_words == ("second",)
    assert updated.name == "style_alias_0"  # name resolution still applies after an update


def test_vanished_files_leave_and_scans_of_other_folders_do_not_remove(tmp_path, folder, plugins):
    other = tmp_path / "other"
    write_lora(other / "elsewhere.safetensors", kohya_metadata(), seed=99)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [folder], plugins=plugins)
    scan_folders(catalog, [other], plugins=plugins)
    assert catalog.count() == 6
    (folder / "style_4.safetensors").unlink()
    report = scan_folders(catalog, [folder], plugins=plugins)
    assert report.removed == 1 and catalog.count() == 5
    assert not any(a.card.path.endswith("style_4.safetensors") for a in catalog.adapters())


def test_rename_with_a_cached_hash_keeps_id_and_controls(tmp_path, folder, plugins, monkeypatch):
    from stylus_ext.catalog import hashing

    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [folder], plugins=plugins)
    adapter = next(a for a in catalog.adapters() if a.card.path.endswith("style_2.safetensors"))
    catalog.set_controls(adapter.id, pinned=True, weight_override=0.55)
    hashing.ensure_hashes(catalog, [adapter.id])
    sha = catalog.get(adapter.id).card.sha256
    hashed: list[str] = []
    real = hashing.file_hashes
    monkeypatch.setattr(hashing, "file_hashes", lambda path: hashed.append(path) or real(path))
    (folder / "moved").mkdir()
    os.rename(folder / "style_2.safetensors", folder / "moved" / "renamed.safetensors")
    report = scan_folders(catalog, [folder], plugins=plugins)
    assert (report.renamed, report.added, report.removed) == (1, 0, 0)
    assert hashed == [str(folder / "moved" / "renamed.safetensors")]  # only the rename candidate
    moved = catalog.get(adapter.id)
    assert moved.card.path == str(folder / "moved" / "renamed.safetensors")
    assert moved.pinned and moved.weight_override == 0.55
    assert moved.card.sha256 == sha
    assert moved.name == "style_alias_2"
    assert catalog.count() == 5


def test_move_of_a_file_with_civitai_version_keeps_entry(tmp_path, plugins):
    lora = tmp_path / "lora"
    write_lora(lora / "a.safetensors", kohya_metadata(), seed=1)
    write_json(lora / "a.civitai.info", civitai_version(321, 5))
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    (adapter,) = catalog.adapters()
    catalog.set_controls(adapter.id, banned=True)
    # content changes (different header) and moves: the sidecar's version id still identifies it
    (lora / "a.safetensors").unlink()
    (lora / "a.civitai.info").rename(lora / "b.civitai.info")
    write_lora(lora / "b.safetensors", kohya_metadata("other"), seed=2)
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.renamed == 1 and catalog.count() == 1
    assert catalog.get(adapter.id).banned


def test_two_copies_of_one_civitai_version_do_not_collide(tmp_path, plugins):
    lora = tmp_path / "lora"
    for sub in ("x", "y"):
        write_lora(lora / sub / f"{sub}.safetensors", kohya_metadata(), seed=ord(sub))
        write_json(lora / sub / f"{sub}.civitai.info", civitai_version(777, 5))
    catalog = Catalog(tmp_path / "c.db")
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.added == 2
    ids = [a.card.civitai_version_id for a in catalog.adapters()]
    assert sorted(ids, key=str) == [777, None]
    assert any("same Civitai version 777" in r for _, r in report.problems)


def test_symlink_loop_is_reported_not_fatal(tmp_path, folder, plugins):
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "dangling.safetensors").symlink_to(tmp_path / "nowhere.safetensors")
    catalog = Catalog(tmp_path / "c.db")
    report = scan_folders(catalog, [folder], plugins=plugins)
    assert report.added == 5
    reasons = dict(report.problems)
    assert "symlink loop" in reasons[str(folder / "loop")]
    assert "cannot read" in reasons[str(folder / "dangling.safetensors")]


def test_unreadable_folder_is_reported_and_its_entries_kept(tmp_path, folder, plugins, monkeypatch):
    write_lora(folder / "locked" / "inner.safetensors", kohya_metadata(), seed=42)
    catalog = Catalog(tmp_path / "c.db")
    assert scan_folders(catalog, [folder], plugins=plugins).added == 6
    locked = str(folder / "locked")
    os.chmod(locked, 0)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked:  # root ignores chmod 000: simulate what other users see
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    try:
        report = scan_folders(catalog, [folder], plugins=plugins)
    finally:
        os.chmod(locked, 0o755)
    assert report.removed == 0 and report.kept_unreadable == 1
    assert "Permission denied" in dict(report.problems)[locked]
    assert catalog.count() == 6
    monkeypatch.setattr(os, "scandir", real_scandir)
    report = scan_folders(catalog, [folder], plugins=plugins)
    assert locked not in dict(report.problems) and catalog.count() == 6


def test_missing_folder_keeps_its_entries(tmp_path, folder, plugins):
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [folder], plugins=plugins)
    shutil.move(str(folder), str(tmp_path / "unmounted"))
    report = scan_folders(catalog, [folder], plugins=plugins)
    assert report.removed == 0 and catalog.count() == 5
    assert "cannot open" in dict(report.problems)[str(folder)]


def test_interrupted_scan_keeps_work_and_rescan_completes(tmp_path, plugins, monkeypatch):
    lora = tmp_path / "lora"
    for i in range(12):
        write_lora(lora / f"f{i:02d}.safetensors", kohya_metadata(), seed=i)
    catalog = Catalog(tmp_path / "c.db")
    calls = {"n": 0}
    real = store.upsert

    def dying(cat, card, notes=None, renames=None):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(cat, card, notes, renames)

    monkeypatch.setattr(store, "upsert", dying)
    with pytest.raises(KeyboardInterrupt):
        scan_folders(catalog, [lora], plugins=plugins, chunk=5)
    catalog.close()
    # another connection sees a valid catalog with the finished files
    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select count(*) from adapters").fetchone()[0] == 7
    monkeypatch.setattr(store, "upsert", real)
    catalog = Catalog(tmp_path / "c.db")
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert (report.added, report.unchanged) == (5, 7) and catalog.count() == 12


def test_catalog_from_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "c.db"
    Catalog(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("pragma user_version = 999")
    with pytest.raises(CatalogError, match="newer Stylus"):
        Catalog(path)
    garbage = tmp_path / "g.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CatalogError):
        Catalog(garbage)


def test_cli_scan_and_controls(tmp_path, folder, capsys):
    from stylus_ext.cli import main

    db = str(tmp_path / "cli.db")
    assert main(["--catalog", db, "scan", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "5 added" in out
    assert main(["--catalog", db, "pin", "style_alias_1"]) == 0
    assert main(["--catalog", db, "weight", "style_alias_1", "0.4"]) == 0
    assert main(["--catalog", db, "ban", "style_2"]) == 0  # file stem works too
    assert main(["--catalog", db, "pin", "no_such_adapter"]) == 1
    assert "no adapter named" in capsys.readouterr().err
    catalog = Catalog(db)
    a1 = next(a for a in catalog.adapters() if a.name == "style_alias_1")
    assert a1.pinned and a1.weight_override == 0.4
    assert next(a for a in catalog.adapters() if a.name == "style_alias_2").banned
    assert main(["--catalog", db, "weight", str(a1.id), "--clear"]) == 0
    assert main(["--catalog", db, "unpin", str(a1.id)]) == 0
    a1 = catalog.get(a1.id)
    assert not a1.pinned and a1.weight_override is None
    assert main(["--catalog", db, "scan", str(folder)]) == 0
    assert "5 unchanged" in capsys.readouterr().out


def test_cli_scan_reports_problems_per_file_with_verbose(tmp_path, folder, capsys):
    from helpers_catalog import write_raw

    from stylus_ext.cli import main

    write_raw(folder / "hostile.safetensors", 2**63, b"{}")
    db = str(tmp_path / "cli.db")
    assert main(["--catalog", db, "scan", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "1 files have problems" in out and "hostile.safetensors" not in out
    assert main(["--catalog", db, "scan", str(folder), "-v"]) == 0
    out = capsys.readouterr().out
    assert "5 unchanged" not in out and "6 unchanged" in out
    line = next(ln for ln in out.splitlines() if "hostile.safetensors" in ln)
    assert "exceeds the 100 MB cap" in line
    assert main(["--catalog", db, "scan", str(folder), "--hash"]) == 0
    assert "6 hashed" in capsys.readouterr().out
