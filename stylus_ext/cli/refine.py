"""``stylus refine [--refiner NAME]``: describe every adapter (cached per card; resumable).

Refiners that cost money per card (``cost_guard`` > 0, e.g. ``vision``) are guarded: sending more
than that many requests needs ``--limit N`` or ``--yes`` (or a "y" at the prompt on a terminal).
Refiners with ``refine_many`` (``vision``) run cards concurrently. Options of the refiner come from
``--refiner-option KEY=VALUE`` or the environment (``STYLUS_VLM_MODEL``...); API keys only from the
environment or key files.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stylus_ext.cli.common import CliContext


def add_parser(sub: Any) -> None:
    p = sub.add_parser("refine", help="describe adapters with a refiner (offline, or a vision model)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--refiner", default="offline", help="refiner backend (default offline; 'vision' = VLM over HTTP)")
    p.add_argument("--refiner-option", action="append", default=[], metavar="KEY=VALUE",
                   help="refiner option (repeatable), e.g. model=gpt-4o-mini, concurrency=8")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="refine at most N pending adapters this run")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before sending many paid requests")
    p.add_argument("--no-retry-errors", action="store_true", help="skip adapters that failed before")
    p.set_defaults(func=run)


def option_pairs(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → dict; a pair without ``=`` is a clear error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def confirm(count: int, refiner: Any, *, stream: Any = None) -> bool:
    """Ask on a terminal; refuse (False) when nobody can answer."""
    stream = stream or sys.stdin
    if not stream.isatty():
        return False
    where = getattr(getattr(refiner, "client", None), "root", "the model server")
    print(f"stylus: this sends {count} requests with images to {where}. Continue? [y/N] ",
          end="", file=sys.stderr, flush=True)
    return stream.readline().strip().lower() in ("y", "yes")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from stylus_ext.refine import pending_rows, refine_catalog, refiner_key

    given = option_pairs(args.refiner_option)
    cls = ctx.plugins.backend_class("refiner", args.refiner)
    for opt in cls.options:
        if opt.secret and opt.name in given:
            raise ValueError(f"{opt.name} is secret: set {opt.env_var(cls.env_prefix)} or its key file, "
                             f"not a command-line option (shell history)")
    refiner = ctx.plugins.create("refiner", args.refiner, **given)
    catalog = ctx.catalog()
    try:
        key = refiner_key(refiner)
        todo = pending_rows(catalog, key, retry_errors=not args.no_retry_errors)
        if args.limit is not None:
            if args.limit < 0:
                raise ValueError("--limit must be >= 0")
            todo = todo[: args.limit]
        guard = int(getattr(refiner, "cost_guard", 0) or 0)
        if guard and len(todo) > guard and args.limit is None and not args.yes and not confirm(len(todo), refiner):
            print(f"stylus: refiner {args.refiner!r} would send {len(todo)} requests (more than {guard}); "
                  f"pass --limit N to do part of it, or --yes", file=sys.stderr)
            return 2
        if args.limit is None and not hasattr(refiner, "refine_many"):
            report = refine_catalog(catalog, refiner, progress=True, retry_errors=not args.no_retry_errors)
        else:
            report = refine_rows(catalog, refiner, todo, progress=True)
        print(report.summary())
        for adapter_id, reason in report.errors[:5]:
            print(f"  adapter {adapter_id}: {reason}", file=sys.stderr)
        return 0 if not report.failed else 1
    finally:
        refiner.close()
        catalog.close()


def refine_rows(catalog: Any, refiner: Any, rows: list[dict[str, Any]], *, progress: bool = False) -> Any:
    """Refine the given pending ``rows`` (concurrently when the refiner has ``refine_many``),
    storing results like :func:`stylus_ext.refine.refine_catalog` (chunked, resumable)."""
    from stylus_ext.refine import CHUNK, RefineReport, _flush, _one_line, _progress, _validated, refiner_key

    key = refiner_key(refiner)
    report = RefineReport(refiner=key, total=catalog.count())
    report.cached = report.total - len(rows)
    catalog.set_meta("refiner", key)
    cards = [catalog.row_to_card(r) for r in rows]
    bar = _progress(len(rows), progress)
    pending: list[dict[str, Any]] = []
    many = getattr(refiner, "refine_many", None)
    results = many(cards) if many else ((i, _safe(refiner.refine, c)) for i, c in enumerate(cards))
    try:
        for pos, result in results:
            row = rows[pos]
            try:
                if isinstance(result, Exception):
                    raise result
                values = _validated(result)
                report.refined += 1
            except Exception as exc:  # noqa: BLE001 - recorded, retried next run
                reason = _one_line(exc)
                values = {"description": None, "category": None, "weight": None, "error": reason}
                report.failed += 1
                report.errors.append((int(row["id"]), reason))
            pending.append({"adapter_id": int(row["id"]), "refiner": key, "card_hash": row.get("card_hash"),
                            **values})
            if len(pending) >= min(CHUNK, 20):
                _flush(catalog, pending)
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        _flush(catalog, pending)
        if hasattr(results, "close"):
            results.close()
        if bar is not None:
            bar.close()
    return report


def _safe(fn: Any, arg: Any) -> Any:
    try:
        return fn(arg)
    except Exception as exc:  # noqa: BLE001
        return exc
