"""``stylus demo``: build the embedded sample catalog and show retrieval and compositions — fully offline.

Writes the sample LoRA folder (see :mod:`stylus_ext.sample`) under ``--dest`` (default
``<data dir>/demo``), scans and indexes it into ``<dest>/catalog.db`` (or the global ``--catalog``
when given: the demo never fills the user's own catalog with sample adapters unless asked), then runs a
handful of varied prompts: the retriever's top 5, and the full composition (concepts, adapters with
reasons, rewritten per-image prompts). No network, no GPU, no API key.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stylus_ext.cli.common import CliContext, dumps
from stylus_ext.paths import data_dir

#: (prompt, target base-model family): varied on purpose — a style phrase, tag-style, a named
#: character, a natural caption, and a prompt that deserves no adapter at all.
DEMO_PROMPTS: tuple[tuple[str, str], ...] = (
    ("a fluffy cat sleeping on a windowsill, watercolor painting", "SD1"),
    ("a corgi running on the beach, low poly", "SDXL"),
    ("medieval castle on a cliff above the sea, studio ghibli style", "SD1"),
    ("masterpiece, best quality, 1man, samurai armor, cherry blossoms, ukiyo-e", "SD1"),
    ("hatsune miku singing on a rainy neon street at night", "SD1"),
    ("a steam locomotive crossing a snowy mountain bridge, 35mm film photo", "SDXL"),
    ("a spreadsheet of quarterly tax figures", "SD1"),
)
SEEDS = (1, 2, 3)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="build the embedded sample catalog and show retrieval and compositions",
                       description="Offline demo on a generated sample LoRA folder (~60 tiny adapters, a few "
                                   "deliberately broken files). Uses <dest>/catalog.db unless --catalog is given.")
    p.add_argument("--dest", metavar="DIR", default=None,
                   help="folder for the sample LoRAs and the demo catalog (default <data dir>/demo)")
    p.add_argument("--json", action="store_true", help="deterministic JSON instead of text")
    p.add_argument("-k", type=int, default=5, help="retrieval results shown per prompt (default 5)")
    p.set_defaults(func=run)


def _candidate_json(c: Any) -> dict[str, Any]:
    a = c.adapter
    out = {"id": a.id, "name": a.name, "title": a.title, "category": a.category,
           "base_model": a.card.base_model, "score": round(float(c.score), 4), "installed": a.installed}
    if a.card.civitai_model_id is not None:
        out["civitai_model_id"] = a.card.civitai_model_id
    return out


class _Runner:
    """Retrieval and composition per target base model, sharing one encoder."""

    def __init__(self, catalog: Any, plugins: Any, k: int, encoder: Any) -> None:
        self.catalog, self.plugins, self.k, self.encoder = catalog, plugins, k, encoder
        self.compose = True
        self._stylus: dict[str, Any] = {}
        self._retriever: Any = None
        self.note = ""

    def stylus(self, base: str) -> Any:
        if base not in self._stylus:
            from stylus_ext.pipeline import Stylus, StylusSettings

            # one retriever (one encoder load) shared across base models
            self._stylus[base] = Stylus(self.catalog, self.plugins, StylusSettings(base_model=base),
                                        retriever=self.retriever())
        return self._stylus[base]

    def retriever(self) -> Any:
        if self._retriever is None:
            from stylus_ext.retrieve import Retriever

            self._retriever = Retriever(self.catalog, encoder=self.encoder)
        return self._retriever

    def retrieve(self, prompt: str, base: str) -> list[Any]:
        if self.compose:
            try:
                return list(self.stylus(base).retrieve(prompt))[: self.k]
            except NotImplementedError:  # the pipeline is still the contract stub
                self.compose = False
                self.note = "composition is not available yet (pipeline not implemented); showing retrieval only"
        return list(self.retriever().search(prompt, k=self.k, base_model=base))

    def plan(self, prompt: str, base: str) -> dict[str, Any] | None:
        return self.stylus(base).plan(prompt, seeds=list(SEEDS)) if self.compose else None


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.indexing import index_catalog
    from stylus_ext.sample import make_sample_folder

    if args.k < 1:
        raise ValueError("-k must be at least 1")
    dest = Path(args.dest).expanduser() if args.dest else data_dir() / "demo"
    catalog_path = Path(args.catalog) if getattr(args, "catalog", None) else dest / "catalog.db"
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    show_progress = not args.json

    folder = make_sample_folder(dest / "Lora")
    say(f"sample LoRA folder: {folder}")
    say(f"catalog: {catalog_path}")
    catalog = Catalog(catalog_path)
    try:
        scan = scan_folders(catalog, [str(folder)], plugins=ctx.plugins, progress=show_progress)
        say(f"scan: {scan.summary()}")
        encoder = ctx.plugins.create("encoder", "transformers")  # loads its model on first use only
        index = index_catalog(catalog, ctx.plugins, encoder=encoder, progress=show_progress)
        summary = index.summary() if hasattr(index, "summary") else str(index)
        say(f"index: {summary}")
        problems, unnamed = _show_problems(catalog, folder, say)
        runner = _Runner(catalog, ctx.plugins, args.k, encoder)
        results = [_show_prompt(runner, prompt, base, args.k, say) for prompt, base in DEMO_PROMPTS]
        if args.json:
            print(dumps({"folder": str(folder), "catalog": str(catalog_path),
                         "problems": [{"path": _rel(p, folder), "reason": r} for p, r in problems],
                         "unreferenceable": [{"path": _rel(p, folder), "reason": r} for p, r in unnamed],
                         "composition_available": runner.compose, "prompts": results}))
        else:
            say("")
            say(f"try your own: stylus --catalog {catalog_path} compose \"a cat in a castle, pixel art\" -n 3")
    finally:
        catalog.close()
    return 0


def _show_problems(catalog: Any, folder: Path, say: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The sample folder's problems and the files ``<lora:NAME>`` cannot reference, said one line each."""
    problems = [(p, r) for p, r in catalog.problems() if _under(p, folder)]
    unnamed = [(r["path"], r["name_problem"]) for r in catalog.rows("coalesce(name_problem, '') != ''")
               if r.get("path") and _under(r["path"], folder)]
    if problems or unnamed:
        say("problems found (one line each; these files are kept out of compositions or read partially):")
    for path, reason in problems:
        say(f"  {_rel(path, folder)}: {reason}")
    for path, reason in unnamed:
        say(f"  {_rel(path, folder)}: cannot be referenced as <lora:NAME>: {reason}")
    return problems, unnamed


def _show_prompt(runner: _Runner, prompt: str, base: str, k: int, say: Any) -> dict[str, Any]:
    """Retrieve and compose one demo prompt, say the result, and return it for ``--json``."""
    candidates = runner.retrieve(prompt, base)
    if runner.note:
        say(f"note: {runner.note}")
        runner.note = ""
    plan = runner.plan(prompt, base)
    say("")
    say(f"=== {prompt}   [{base} checkpoint]")
    say(f"retrieval top {k}:")
    for rank, c in enumerate(candidates, 1):
        a = c.adapter
        say(f"  {rank}. {a.name}  ({a.category}, {a.card.base_model})  score {float(c.score):.3f}  {a.title}")
    if plan is not None:
        say(_format_plan(plan))
    return {"prompt": prompt, "base_model": base, "retrieval": [_candidate_json(c) for c in candidates],
            "composition": plan}


def _under(path: str, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def _rel(path: str, folder: Path) -> str:
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix()
    except (ValueError, OSError):
        return path


def _format_plan(plan: dict[str, Any]) -> str:
    try:
        from stylus_ext.cli.compose import format_plan

        lines = format_plan(plan).splitlines()
        return "\n".join(line for line in lines if not line.startswith("prompt: "))
    except (ImportError, KeyError, TypeError):  # a different plan shape: show it raw rather than fail
        return dumps(plan)
