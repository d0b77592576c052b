"""The catalog and its input paths under attack: a hostile LoRA folder, hostile card files, ``kill -9``
at random points of ``stylus scan`` / ``import-cards``, and the WebUI's background refresh running
beside a CLI scan of the same catalog.

    .venv/bin/python benchmarks/bench_hostile.py [--kills 38] [--rounds 4] [--files 150]

Prints one table (every figure should read zero except "inputs tried"):

    | area | inputs tried | crashes / tracebacks | hangs | data lost | leaks |

"data lost" counts good LoRAs or cards missing after the run, and pins, bans and weights that did not
survive; "leaks" counts file descriptors left open by the run and lock/part files left behind.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers_catalog import hostile_cards, hostile_folder, kohya_metadata, write_lora  # noqa: E402

from stylus_ext.catalog.cards import import_cards  # noqa: E402
from stylus_ext.catalog.db import Catalog  # noqa: E402
from stylus_ext.catalog.scan import scan_folders  # noqa: E402
from stylus_ext.plugins import PluginManager  # noqa: E402

HANG_S = 120.0


@dataclass
class Row:
    area: str
    tried: int = 0
    crashes: int = 0
    hangs: int = 0
    lost: int = 0
    leaks: int = 0


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def cli(*argv: str, timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "stylus_ext", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None, bool]:
    """``fn`` in a thread: (result, exception, hung)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(HANG_S)
    return box.get("value"), box.get("error"), thread.is_alive()


def hostile_folder_row(work: Path, plugins: Any) -> Row:
    root = work / "hostile"
    cases = hostile_folder(root)
    row = Row("hostile LoRA folder (scan, rescan)", tried=len(cases))
    catalog = Catalog(work / "hostile.db")
    fds = open_fds()
    for _ in range(2):
        _, error, hung = run_timed(scan_folders, catalog, [root], plugins=plugins)
        row.crashes += error is not None
        row.hangs += hung
    paths = {r["path"] for r in catalog.rows("path is not null")}
    row.lost = sum(1 for case, expect in cases.items() if expect == "kept" and str(root / case) not in paths)
    catalog.close()
    row.leaks = max(0, open_fds() - fds)
    return row


def hostile_cards_row(work: Path, plugins: Any) -> Row:
    expected = hostile_cards(work / "cards")
    row = Row("hostile card files (import-cards)", tried=len(expected))
    catalog = Catalog(work / "cards.db")
    fds = open_fds()
    report, error, hung = run_timed(import_cards, catalog, [work / "cards"], plugins=plugins)
    row.crashes, row.hangs = int(error is not None), int(hung)
    row.lost = max(0, sum(expected.values()) - (report.cards if report else 0))
    catalog.close()
    row.leaks = max(0, open_fds() - fds)
    return row


def make_folder(root: Path, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        write_lora(root / f"g{i // 50}" / f"lora_{i:04d}.safetensors", kohya_metadata(f"alias_{i:04d}"), seed=i)


def _integrity(path: Path) -> bool:
    catalog = Catalog(path)
    try:
        return catalog.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        catalog.close()


def kill_row(work: Path, kills: int, files: int) -> Row:
    """``kill -9`` of scan / import-cards at random points, then a clean run must finish the work."""
    lora, db = work / "kill-lora", work / "kill.db"
    make_folder(lora, files)
    cards = work / "kill-cards"
    hostile_cards(cards)
    os.unlink(cards / "fifo.json")
    row = Row("kill -9 during scan / import-cards", tried=kills)
    rng = random.Random(7)
    pins: dict[str, bool] = {}
    landed = 0
    for n in range(kills):
        if n == kills // 2:  # set controls half-way: later kills must never lose them
            first = Catalog(db)
            for r in list(first.rows("path is not null"))[:5]:
                first.set_controls(r["id"], pinned=True, weight_override=0.4)
                pins[r["path"]] = True
            first.close()
        command = ["scan", str(lora)] if n % 3 else ["import-cards", str(cards)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "stylus_ext", "--catalog", str(db), *command], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.wait(30)
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        row.crashes += "Traceback" in stderr
        if db.exists() and not _integrity(db):
            row.crashes += 1
        if n % 4 == 3:  # the folder changes between kills
            make_folder(lora, 5, start=files + n * 5)
    done = cli("--catalog", str(db), "scan", str(lora))
    row.crashes += done.returncode != 0 or "Traceback" in done.stderr
    catalog = Catalog(db)
    expected = sum(1 for _ in lora.rglob("*.safetensors"))
    row.lost = abs(catalog.count("path is not null") - expected)
    kept = {r["path"] for r in catalog.rows("pinned = 1 and weight_override = 0.4")}
    row.lost += sum(1 for p in pins if p not in kept)
    catalog.close()
    row.leaks = sum(1 for _ in lora.rglob(".stylus-*.part"))
    row.area += f" ({landed} killed mid-run)"
    return row


class _Runtime:
    """What the WebUI's Refresher asks of the extension runtime, for one folder and catalog."""

    def __init__(self, folder: Path, catalog: Path, plugins: Any) -> None:
        self.folder, self.catalog, self.plugins = folder, catalog, plugins

    def values(self) -> dict[str, Any]:
        return {"lora_dirs": str(self.folder), "auto_refresh": True}

    def catalog_path(self, values: dict[str, Any]) -> str:
        return str(self.catalog)

    def apply_encoder_settings(self, values: dict[str, Any]) -> str:
        return "transformers"

    def encoder(self, values: dict[str, Any]) -> Any:  # the Refresher passes the encoder explicitly
        return self.plugins.create("encoder", "transformers")

    def invalidate(self) -> None:
        pass


def concurrent_row(work: Path, rounds: int, files: int, plugins: Any) -> Row:
    """The WebUI's background refresh (scan → reconcile → index) beside a CLI scan, every round."""
    from stylus_ext.webui.lora_source import Refresher

    lora, db = work / "both-lora", work / "both.db"
    make_folder(lora, files)
    row = Row("WebUI refresh + CLI scan at once", tried=rounds)
    refresher = Refresher(_Runtime(lora, db, plugins))
    fds = open_fds()
    for n in range(rounds):
        make_folder(lora, 10, start=files + n * 10)
        refresher.start("bench", force=True)
        done = cli("--catalog", str(db), "scan", str(lora))
        refresher.join(HANG_S)
        row.hangs += refresher.running
        row.crashes += done.returncode != 0 or "Traceback" in done.stderr
        row.crashes += bool(refresher.last_error)
        if refresher.last_error or done.returncode:
            print(f"  round {n}: refresh {refresher.last_error!r}; cli {done.stderr.strip()[-300:]!r}")
    catalog = Catalog(db)
    row.lost = abs(catalog.count("path is not null") - sum(1 for _ in lora.rglob("*.safetensors")))
    catalog.close()
    row.leaks = max(0, open_fds() - fds) + int(any(lora.rglob(".stylus-*.part")))
    return row


def damaged_row(work: Path) -> Row:
    """Every command on a catalog with garbage pages: one line each, never a traceback."""
    import contextlib
    import io

    from test_hostile_catalog import COMMANDS, _damage

    from stylus_ext.cli import main as stylus

    db, lora = work / "damaged.db", work / "damaged-lora"
    _damage(db)
    write_lora(lora / "x.safetensors")
    (work / "damaged.json").write_text("[]", encoding="utf-8")
    row = Row("damaged catalog x every command", tried=len(COMMANDS))
    for command in COMMANDS:
        argv = [a.format(lora=lora, cards=work / "damaged.json") for a in command]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                stylus(["--catalog", str(db), *argv])
        except BaseException:
            row.crashes += 1
        row.crashes += sum(1 for line in err.getvalue().splitlines() if line.startswith("stylus: error")) > 1
    return row


def stale_sync_row(plugins: Any) -> Row:
    """A Civitai that sends the same items under a new cursor forever: the sync must end."""
    from helpers_civitai import make_source, start_fake

    from stylus_ext.civitai.sync import sync_civitai
    from stylus_ext.sdk.civitai.pages import STALE_PAGES

    fake = start_fake(5)
    pages = {"n": 0}

    def same_items(h: Any, query: Any) -> None:
        pages["n"] += 1
        fake._json(h, {"items": [fake._absolute(i) for i in fake.models],
                       "metadata": {"nextCursor": f"fresh{pages['n']}"}})

    fake._models = same_items
    catalog = Catalog(Path(tempfile.mkdtemp()) / "sync.db")
    row = Row("Civitai: new cursor, same items", tried=1)
    try:
        report, error, hung = run_timed(sync_civitai, catalog, make_source(plugins, fake))
        row.crashes, row.hangs = int(error is not None), int(hung or pages["n"] > 1 + STALE_PAGES)
        row.lost = 5 - (report.added if report else 0)
    finally:
        fake.stop()
        catalog.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=38)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--files", type=int, default=150)
    parser.add_argument("--keep", metavar="DIR", help="work here and keep the files")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="stylus-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("STYLUS_HOME", str(work / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    plugins = PluginManager(user_dir=work / "no-plugins", entry_points_enabled=False)
    started = time.perf_counter()
    try:
        rows = [hostile_folder_row(work, plugins), hostile_cards_row(work, plugins),
                kill_row(work, args.kills, args.files), concurrent_row(work, args.rounds, args.files, plugins),
                damaged_row(work), stale_sync_row(plugins)]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("| area | inputs tried | crashes / tracebacks | hangs | data lost | leaks |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.area} | {r.tried} | {r.crashes} | {r.hangs} | {r.lost} | {r.leaks} |")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
