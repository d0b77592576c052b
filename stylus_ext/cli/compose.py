"""``stylus compose PROMPT -n N --seed S``: concepts, adapters and reasons, then N per-image prompts."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any

from stylus_ext.cli.common import CliContext, add_prompt_arguments, base_model_arg, dumps, iter_prompts
from stylus_ext.mask import STRATEGIES


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compose", help="choose adapters for a prompt and write the per-image prompts",
                       description="Retrieve candidates, compose (validated), mask per image seed and rewrite "
                                   "the prompt with <lora:NAME:WEIGHT> tags. Covers the whole catalogue; "
                                   "adapters that are not installed are marked.")
    add_prompt_arguments(p)
    p.add_argument("-n", "--images", type=int, default=4, metavar="N", help="number of images (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first image; image i uses seed+i (default 0)")
    p.add_argument("--negative", default="", help="negative prompt to extend")
    p.add_argument("--json", action="store_true", help="deterministic JSON (JSONL with --input)")
    p.add_argument("--composer", default="offline", help="composer backend (default offline; see `stylus plugins`)")
    p.add_argument("--composer-option", action="append", default=[], metavar="KEY=VALUE",
                   help="composer option (repeatable), e.g. temperature=0; secrets only from the environment")
    p.add_argument("--mask", default="paper", choices=STRATEGIES, help="masking strategy (default paper)")
    p.add_argument("--base-model", default=None, metavar="F", type=base_model_arg,
                   help="target base-model family (SD1, SDXL, Pony, ...; 'any' = no filter)")
    p.add_argument("--installed-only", action="store_true", help="use installed adapters only")
    p.add_argument("--max-adapters", type=int, default=4, help="most adapters per prompt (default 4)")
    p.add_argument("--strength", type=float, default=0.8, help="global weight multiplier (default 0.8)")
    p.add_argument("--top-k", type=int, default=150, help="candidates retrieved per prompt (default 150)")
    p.add_argument("--allow-nsfw", action="store_true", help="allow NSFW adapters")
    p.add_argument("--no-characters", action="store_true", help="never use character/celebrity adapters")
    p.add_argument("--no-triggers", action="store_true", help="do not add activation text")
    p.add_argument("--debias", default="", help="suffix added to every rewritten prompt")
    p.add_argument("--emphasize", action="store_true", help="re-emphasise concepts that got no adapter")
    p.add_argument("--allow-empty-mask", action="store_true", help="allow images with no adapter at all")
    p.add_argument("--compose-tagged", action="store_true",
                   help="compose even when the prompt already has <lora:...> tags of catalogue adapters "
                        "(default: such a prompt is taken as composed, e.g. pasted back from an image)")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from stylus_ext.pipeline import StylusSettings

    if args.images < 0 or args.images > 10000:
        raise ValueError("-n must be between 0 and 10000")
    if args.max_adapters < 0:
        raise ValueError("--max-adapters must be >= 0")
    if args.top_k < 1:
        raise ValueError("--top-k must be at least 1")
    if not math.isfinite(args.strength) or not 0 <= args.strength <= 5:
        raise ValueError("--strength must be a number from 0 to 5")
    return StylusSettings(
        top_k=args.top_k, composer=args.composer, max_adapters=args.max_adapters, strength=args.strength,
        mask=args.mask, allow_empty_mask=args.allow_empty_mask, add_triggers=not args.no_triggers,
        debias=args.debias, emphasize_unmatched=args.emphasize, base_model=args.base_model,
        installed_only=args.installed_only, allow_nsfw=args.allow_nsfw, allow_characters=not args.no_characters,
        compose_tagged=args.compose_tagged, composer_options=dict(getattr(args, "composer_options", {})))


def composer_options(args: argparse.Namespace, plugins: Any) -> dict[str, str]:
    """``--composer-option`` pairs, checked up front: an unknown composer, option or value is an error."""
    from stylus_ext.cli.refine import option_pairs
    from stylus_ext.sdk import resolve_options

    cls = plugins.backend_class("composer", args.composer)  # LookupError names the available ones
    given = option_pairs(args.composer_option)
    for opt in cls.options:
        if opt.secret and opt.name in given:
            raise ValueError(f"{opt.name} is secret: set {opt.env_var(cls.env_prefix)} or its key file, "
                             f"not a command-line option (shell history)")
    resolve_options(cls.options, cls.env_prefix, given)  # ValueError: unknown option / unreadable value
    return given


def format_plan(plan: dict[str, Any]) -> str:
    lines = [f"prompt: {plan['prompt']}", f"composer: {plan['composer']}", "concepts:"]
    if not plan["concepts"]:
        lines.append("  (none)")
    for c in plan["concepts"]:
        if not c["adapters"]:
            lines.append(f"  {c['concept']}: no adapter")
            continue
        lines.append(f"  {c['concept']}:")
        for a in c["adapters"]:
            mark = "" if a["installed"] else "  [not installed]"
            lines.append(f"    {a['name']} ({a['weight']:g}){mark}")
            if a.get("reason"):
                lines.append(f"      {a['reason']}")
    for w in plan.get("warnings", []):
        lines.append(f"warning: {w}")
    for n in plan.get("notes", []):
        lines.append(f"note: {n}")
    lines.append("images:")
    for i, im in enumerate(plan["images"], 1):
        lines.append(f"  [{i}] seed {im['seed']}: {im['prompt']}")
        if im["negative_prompt"]:
            lines.append(f"      negative: {im['negative_prompt']}")
    return "\n".join(lines)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from stylus_ext.pipeline import Stylus

    args.composer_options = composer_options(args, ctx.plugins)
    settings = settings_from_args(args)
    catalog = ctx.catalog(create=False)
    stylus = Stylus(catalog, ctx.plugins, settings)
    seeds = [args.seed + i for i in range(args.images)]
    first = True
    logger = logging.getLogger("stylus")
    text = not (args.json or args.input)
    if text:  # the text output lists the composer's warnings itself: say them once, not on stderr too
        logger.addFilter(_not_told_once)
    try:
        for prompt in iter_prompts(args):
            plan = stylus.plan(prompt, seeds, args.negative)
            if not text:
                print(dumps(plan))
            else:
                if not first:
                    print()
                print(format_plan(plan))
            first = False
            sys.stdout.flush()
    finally:
        logger.removeFilter(_not_told_once)
    return 0


def _not_told_once(record: logging.LogRecord) -> bool:
    return record.funcName != "tell_once"
