"""The catalog under hostile conditions: missing drives and moved folders lose no controls, renames
need hash evidence, two writers both finish, and a damaged, full or read-only catalog gives one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from helpers_catalog import civitai_model, civitai_version, kohya_metadata, seed, write_lora

from stylus_ext import sdk
from stylus_ext.catalog import hashing, store
from stylus_ext.catalog.db import SCHEMA_VERSION, Catalog
from stylus_ext.catalog.scan import MASS_REMOVAL_MIN, ScanBusy, scan_folders, scan_lock
from stylus_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _folder(root: Path, count: int, seed0: int = 0) -> list[Path]:
    return [write_lora(root / f"lora_{i}.safetensors", kohya_metadata(), seed=seed0 + i) for i in range(count)]


def _controls(catalog: Catalog) -> dict[str, tuple]:
    return {os.path.basename(r["path"]): (r["pinned"], r["banned"], r["weight_override"])
            for r in catalog.rows("path is not null")}


@pytest.fixture
def controlled(tmp_path, plugins):
    """A scanned folder of 12 LoRAs with a pin, a ban, a weight and a refinement set."""
    lora = tmp_path / "lora"
    _folder(lora, 12)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    ids = {os.path.basename(r["path"]): r["id"] for r in catalog.rows("path is not null")}
    catalog.set_controls(ids["lora_0.safetensors"], pinned=True)
    catalog.set_controls(ids["lora_1.safetensors"], banned=True)
    catalog.set_controls(ids["lora_2.safetensors"], weight_override=0.35)
    catalog.db.execute("insert into refinements (adapter_id, refiner, card_hash, description, category, weight) "
                       "values (?, 'vision@1', 'h', 'a paid description', 'style', 0.7)", [ids["lora_3.safetensors"]])
    catalog.db.conn.commit()
    return catalog, lora, _controls(catalog)


def test_empty_or_unmounted_folder_removes_nothing(controlled, plugins, tmp_path):
    catalog, lora, before = controlled
    moved = tmp_path / "elsewhere"
    lora.rename(moved)  # the NAS is not mounted: the folder is gone
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.removed == 0 and _controls(catalog) == before
    lora.mkdir()  # mounted, but empty
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.removed == 0 and report.kept_missing == 12 and "--prune" in report.summary()
    assert _controls(catalog) == before


def test_mass_removal_needs_prune_and_controls_return_with_the_files(controlled, plugins, tmp_path):
    catalog, lora, before = controlled
    attic = tmp_path / "attic"
    attic.mkdir()
    for path in sorted(lora.iterdir())[:-1]:  # all but one: a moved folder, not a cleanup
        path.rename(attic / path.name)
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.removed == 0 and report.kept_missing == 11 > MASS_REMOVAL_MIN
    report = scan_folders(catalog, [lora], plugins=plugins, prune=True)
    assert report.removed == 11 and catalog.count() == 1
    for path in attic.iterdir():
        path.rename(lora / path.name)
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.added == 11 and _controls(catalog) == before
    restored = catalog.db.execute("select description from refinements where refiner = 'vision@1'").fetchall()
    assert restored == [("a paid description",)]


def test_cli_scan_prune_flag_and_message(controlled, capsys, tmp_path):
    catalog, lora, _ = controlled
    catalog.close()
    shutil.rmtree(lora)
    lora.mkdir()
    db = str(tmp_path / "c.db")
    assert main(["--catalog", db, "scan", str(lora)]) == 0
    assert "12 entries whose files are gone were kept" in capsys.readouterr().out
    assert main(["--catalog", db, "scan", "--prune", str(lora)]) == 0
    assert "12 removed" in capsys.readouterr().out


def test_a_look_alike_lora_does_not_inherit_a_deleted_ones_ban(tmp_path, plugins):
    """Two different LoRAs with the same metadata-free header and size: not a rename."""
    lora = tmp_path / "lora"
    write_lora(lora / "evil.safetensors", {}, seed=1)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    (row,) = catalog.rows()
    catalog.set_controls(row["id"], banned=True, weight_override=-2.0)
    hashing.ensure_hashes(catalog)
    (lora / "evil.safetensors").unlink()
    write_lora(lora / "innocent.safetensors", {}, seed=2)  # same shapes, other values
    report = scan_folders(catalog, [lora], plugins=plugins, prune=True)
    assert (report.renamed, report.added) == (0, 1)
    (new,) = catalog.rows()
    assert new["id"] != row["id"] and not new["banned"] and new["weight_override"] is None


def test_two_writers_both_finish(tmp_path, plugins):
    """The WebUI's background refresh and a CLI scan at once: neither fails with "database is locked"."""
    lora = tmp_path / "lora"
    _folder(lora, 30)
    path = tmp_path / "c.db"
    Catalog(path).close()
    errors: list[BaseException] = []

    def scan(folder: Path) -> None:
        catalog = Catalog(path)
        try:
            scan_folders(catalog, [folder], plugins=plugins, chunk=3)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)
        finally:
            catalog.close()

    def controls() -> None:
        catalog = Catalog(path)
        try:
            for _ in range(20):
                seed(catalog, [sdk.AdapterCard(source="t", name=f"remote_{_}", civitai_version_id=_ + 1)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            catalog.close()

    threads = [threading.Thread(target=scan, args=(lora,)) for _ in range(3)] + [threading.Thread(target=controls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    catalog = Catalog(path)
    assert catalog.count("path is not null") == 30 and catalog.count("path is null") == 20


def test_a_scan_waits_for_another_then_says_so(tmp_path, plugins):
    catalog = Catalog(tmp_path / "c.db")
    other = Catalog(tmp_path / "c.db")
    with scan_lock(other), pytest.raises(ScanBusy, match="another scan"):
        scan_folders(catalog, [tmp_path], plugins=plugins, lock_wait=0.2)


def _damage(path: Path) -> None:
    """Garbage over some middle pages (the header stays): "database disk image is malformed"."""
    catalog = Catalog(path)
    seed(catalog, [sdk.AdapterCard(source="t", name=f"a{i}", title="x" * 300, description="y" * 2000,
                                   path=f"/l/a{i}.safetensors") for i in range(300)])
    catalog.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog.close()
    with open(path, "r+b") as fh:
        size = fh.seek(0, 2)
        for page in range(3, size // 4096, 3):
            fh.seek(page * 4096)
            fh.write(b"\xde\xad" * 2048)


COMMANDS = [["info"], ["info", "--json"], ["search", "a fox"], ["compose", "a fox"], ["scan", "{lora}"],
            ["scan", "--problems"], ["import-cards", "{cards}"], ["pin", "a1"], ["unban", "a2"],
            ["weight", "a3", "0.5"], ["index"], ["refine"], ["download", "1", "--lora-dir", "{lora}"]]


def test_a_damaged_catalog_gives_one_line_for_every_command(tmp_path, capsys):
    path = tmp_path / "c.db"
    _damage(path)
    lora = tmp_path / "lora"
    write_lora(lora / "x.safetensors")
    (tmp_path / "cards.json").write_text(json.dumps(civitai_model(7, [civitai_version(70, 7)])), encoding="utf-8")
    damaged = 0
    for command in COMMANDS:
        argv = [a.format(lora=lora, cards=tmp_path / "cards.json") for a in command]
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        code = main(["--catalog", str(path), *argv])
        if command[0] != "search":  # search may build its word index (lexical.py) in the pages that still work
            assert hashlib.sha256(path.read_bytes()).hexdigest() == before, command
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("stylus: error")]
        assert "Traceback" not in err and code in (0, 1), (command, err)
        if lines:  # a command that never reads a damaged page may still succeed (or fail for its own reason)
            assert len(lines) == 1 and "damaged" in lines[0] and "Restore a backup" in lines[0], (command, err)
            damaged += 1
    assert damaged >= len(COMMANDS) // 2, damaged


def test_full_disk_during_index_is_one_line_and_the_catalog_survives(tmp_path, sample_catalog):
    """`stylus index` with the file-size limit just above the catalog (as a full disk answers)."""
    import resource
    import signal

    with _closing(Catalog(sample_catalog)) as catalog:  # new cards: `index` must embed and write them
        seed(catalog, [sdk.AdapterCard(source="t", name=f"new_{i}", title=f"harbour painting number {i}",
                                       description=f"a quiet harbour at dusk, boats, study {i}") for i in range(40)])
        catalog.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = catalog.count()
    limit = 16384  # no write beyond 16 KB into any file: what a full disk answers

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "stylus_ext", "--catalog", str(sample_catalog), "index"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=cap,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("stylus: error")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    with _closing(Catalog(sample_catalog)) as catalog:
        assert catalog.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert catalog.count() == count


class _closing:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def __enter__(self) -> Catalog:
        return self.catalog

    def __exit__(self, *exc: object) -> None:
        self.catalog.close()


@pytest.mark.skipif(os.name == "nt", reason="needs POSIX permission bits")
def test_read_only_catalog_folder_still_serves_info_search_and_compose(sample_catalog, capsys, monkeypatch):
    warm = main(["--catalog", str(sample_catalog), "search", "a fox", "-k", "2"])  # imports and the model, as root
    capsys.readouterr()
    assert warm == 0
    base = Path(tempfile.mkdtemp(prefix="stylus-ro-"))
    home = Path(tempfile.mkdtemp(prefix="stylus-home-"))
    try:
        base.chmod(0o755)
        home.chmod(0o777)
        monkeypatch.setenv("STYLUS_HOME", str(home))
        ro = base / "ro"
        shutil.copytree(sample_catalog.parent, ro)
        for item in ro.iterdir():
            item.chmod(0o444)
        ro.chmod(0o555)
        catalog = str(ro / sample_catalog.name)
        before = {p.name: p.read_bytes() for p in ro.iterdir()}
        root = os.geteuid() == 0
        if root:
            os.seteuid(65534)  # as another user: root ignores permission bits
        try:
            results = [(main(["--catalog", catalog, *argv]), capsys.readouterr())
                       for argv in (["info"], ["search", "a red fox", "-k", "3"], ["compose", "a red fox"])]
            write = main(["--catalog", catalog, "pin", "1"]), capsys.readouterr()
        finally:
            if root:
                os.seteuid(0)
        for code, (out, err) in results:
            assert code == 0 and out.strip() and "Traceback" not in err, err
        assert write[0] == 1 and "read-only" in write[1].err and len(write[1].err.strip().splitlines()) == 1
        assert {p.name: p.read_bytes() for p in ro.iterdir()} == before
    finally:
        for folder in (base, home):
            for dirpath, _, _ in os.walk(folder):
                os.chmod(dirpath, 0o755)
            shutil.rmtree(folder, ignore_errors=True)


def test_unstorable_numbers_are_one_line(sample_catalog, capsys):
    code = main(["--catalog", str(sample_catalog), "ban", "999999999999999999999999"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "at most 19 digits" in err
    code = main(["--catalog", str(sample_catalog), "ban", "\u00b2"])
    assert code == 1 and "no adapter named" in capsys.readouterr().err


def test_store_refuses_nothing_it_can_bind(tmp_path):
    catalog = Catalog(tmp_path / "c.db")
    with pytest.raises(store.UNSTORABLE):
        seed(catalog, [sdk.AdapterCard(source="t", name="x", civitai_model_id=10**30)])
    assert catalog.count() == 0
    assert sqlite3.connect(tmp_path / "c.db").execute("select count(*) from adapters").fetchone() == (0,)


def test_controls_return_by_hash_under_another_name(tmp_path, plugins):
    lora = tmp_path / "lora"
    write_lora(lora / "original.safetensors", kohya_metadata(), seed=5)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    (row,) = catalog.rows()
    catalog.set_controls(row["id"], banned=True, weight_override=0.25)
    hashing.ensure_hashes(catalog)
    (lora / "original.safetensors").rename(tmp_path / "away.safetensors")
    scan_folders(catalog, [lora], plugins=plugins, prune=True)
    assert catalog.count() == 0
    (tmp_path / "away.safetensors").rename(lora / "renamed_later.safetensors")
    scan_folders(catalog, [lora], plugins=plugins)
    (back,) = catalog.rows()
    assert not back["banned"]  # a new name, no hash yet: no evidence
    hashing.ensure_hashes(catalog)
    (back,) = catalog.rows()
    assert back["banned"] and back["weight_override"] == 0.25


def test_a_schema_1_catalog_upgrades_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "c.db"
    catalog = Catalog(path)
    (adapter_id,) = seed(catalog, [sdk.AdapterCard(source="t", name="old", path="/l/old.safetensors")])
    catalog.set_controls(adapter_id, pinned=True)
    catalog.db.execute("drop table kept_controls")
    catalog.db.execute("drop table example_texts")
    for (name,) in catalog.db.execute("select name from sqlite_master where type = 'trigger'").fetchall():
        catalog.db.execute(f"drop trigger {name}")
    catalog.db.execute("delete from meta where key in ('generation', 'text_generation', 'catalog_uid')")
    catalog.db.execute("PRAGMA user_version = 1")
    catalog.db.conn.commit()
    catalog.close()
    again = Catalog(path)
    assert again.schema_version == SCHEMA_VERSION and {"kept_controls", "example_texts"} <= set(again.db.table_names())
    before = again.generation()
    again.set_controls(adapter_id, banned=True)
    assert before is not None and again.generation() != before  # schema 3's change counter
    assert again.get(adapter_id).pinned
