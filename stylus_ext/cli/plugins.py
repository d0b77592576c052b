"""``stylus plugins``: what is loaded, from where, and which hooks and backends each provides."""

from __future__ import annotations

import argparse
from typing import Any

from stylus_ext.cli.common import dumps


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plugins", help="list loaded plugins, their hooks and backends")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    infos = ctx.plugins.describe()
    if args.json:
        print(dumps(infos))
        return 0
    for info in infos:
        status = f"  [{info['error']}]" if info["error"] else ""
        print(f"{info['name']} ({info['origin']}: {info['location']}){status}")
        if info["hooks"]:
            print(f"  hooks: {', '.join(info['hooks'])}")
        for kind, names in sorted(info["backends"].items()):
            print(f"  {kind}: {', '.join(names)}")
    return 0
