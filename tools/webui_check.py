"""Install this checkout into a real WebUI (A1111, Forge or Forge Neo) and check Stylus through its API.

Not part of ``make test``: CI cannot install a WebUI. Typical use, with the WebUI's own venv::

    python tools/webui_check.py --webui ~/sd/webui --install --launch -- --api --skip-torch-cuda-test --use-cpu all
    python tools/webui_check.py --url http://127.0.0.1:7860          # a WebUI already running with --api

``--install`` does what "Install from URL" does: ``git clone`` of this checkout (its committed state)
into ``<webui>/extensions/stylus``, then runs ``install.py`` with the WebUI root on ``PYTHONPATH``
and the WebUI venv's Python, as the WebUI does on start. It also writes a random-bytes
``stylus_check_pirate_ship.safetensors`` into the WebUI's LoRA folder. ``--launch`` starts
``launch.py`` with the flags after ``--`` and stops it at the end.

The WebUI needs LoRAs that fit the prompts below, or "at least one image tagged" fails:
``tools/webui_check_loras.py`` writes tiny ones (for the tiny checkpoints of ``../shared/webui-harness``).
Before generating it waits until Stylus's index is built (``--wait-index``), else the first images
get no adapters and the checks prove nothing. The checks (one line each, then a JSON summary with the
figures; the exit status is the number of failures): scripts listed; per-image "Lora hashes" equal
to the image's tags, and at least one image tagged; paste-back gives the user's prompt byte for byte,
through the WebUI's own parser and every registered paste callback (``/sdapi/v1/png-info`` on each
returned image; Stylus's own callback applied here when the route gives no parameters); the broken
file never tagged, listed with its problem and not counted as installed; the compose route answers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BROKEN = "stylus_check_pirate_ship"
PROMPTS = ("a castle on a hill, studio ghibli style, watercolor", "a pirate ship at sea",
           "an origami steam locomotive inside a gothic cathedral, claymation, pixel art")
#: The WebUI's infotext parameter pattern (modules/infotext_utils.py, re_param), written again.
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_TAG = re.compile(r"<(?:lora|lyco):([^:>]+)(?::[^>]*)?>")


def parse_infotext(text: str) -> dict[str, Any]:
    """Prompt / Negative prompt / the last line's parameters, as the WebUI parses pasted text."""
    lines = text.strip().split("\n")
    params: dict[str, Any] = {}
    prompt, negative, done = "", "", False
    last = lines[-1] if len(RE_PARAM.findall(lines[-1])) >= 3 else ""
    for raw in lines[:-1] if last else lines:
        line = raw.strip()
        if line.startswith("Negative prompt:"):
            done, line = True, line[len("Negative prompt:"):].strip()
        if done:
            negative += ("" if not negative else "\n") + line
        else:
            prompt += ("" if not prompt else "\n") + line
    for key, raw_value in RE_PARAM.findall(last):
        value: Any = raw_value
        if raw_value.startswith('"') and raw_value.endswith('"'):
            try:
                value = json.loads(raw_value)
            except ValueError:
                value = raw_value
        params[key.strip()] = value
    params["Prompt"], params["Negative prompt"] = prompt, negative
    return params


class Api:
    def __init__(self, url: str, timeout: float = 600.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def wait(self, limit: float, path: str = "/stylus/v1/catalog?limit=1", every: float = 3.0) -> None:
        """Until ``path`` answers: Stylus's route, not only the WebUI's own API, which answers first
        (Forge serves ``/sdapi`` several seconds before its ``on_app_started`` callbacks add ours)."""
        start, last = time.monotonic(), "no answer"
        while time.monotonic() - start < limit:
            try:
                self.call(path)
                return
            except urllib.error.HTTPError as exc:
                last = f"{path} answers HTTP {exc.code} (Stylus not loaded?)"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last = str(exc)
            time.sleep(every)
        raise SystemExit(f"the WebUI at {self.url} did not answer within {limit:.0f} s: {last}")


def install(webui: Path, python: str) -> None:
    dest = webui / "extensions" / "stylus"
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    env = {**os.environ, "PYTHONPATH": str(webui)}
    subprocess.run([python, str(dest / "install.py")], cwd=webui, env=env, check=True)
    lora = webui / "models" / "Lora"
    lora.mkdir(parents=True, exist_ok=True)
    (lora / f"{BROKEN}.safetensors").write_bytes(os.urandom(4096))


def launch(webui: Path, python: str, flags: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - kept open for the server's lifetime
    return subprocess.Popen([python, "-u", "launch.py", *flags], cwd=webui, stdout=out, stderr=subprocess.STDOUT)


def wait_for_index(api: Api, limit: float) -> dict[str, Any]:
    """``/stylus/v1/catalog`` once the index has vectors (or says an error, or ``limit`` s passed);
    the first call starts the background scan when needed."""
    start = time.monotonic()
    while True:
        state = api.call("/stylus/v1/catalog?limit=1000")
        if state.get("indexed") or state.get("error") or time.monotonic() - start >= limit:
            return state
        time.sleep(3)


def _txt2img(api: Api, prompt: str, **extra: Any) -> tuple[list[str], list[str]]:
    """``(images, infotexts)`` of one Stylus generation (2 batches of 2)."""
    body = {"prompt": prompt, "negative_prompt": "blurry", "seed": 1234, "steps": 2, "width": 64, "height": 64,
            "batch_size": 2, "n_iter": 2, "script_name": "stylus", "script_args": [], **extra}
    out = api.call("/sdapi/v1/txt2img", body)
    info = json.loads(out["info"])
    return list(out.get("images") or []), list(info.get("infotexts") or [])


def webui_parsed(api: Api, images: list[str]) -> list[dict[str, Any]] | None:
    """Each image's parameters as the WebUI parses them when pasted (its own parser, then every
    ``on_infotext_pasted`` callback), from ``/sdapi/v1/png-info``; None when the route gives none."""
    out = []
    for image in images:
        params = api.call("/sdapi/v1/png-info", {"image": image}).get("parameters")
        if not isinstance(params, dict) or "Prompt" not in params:
            return None
        out.append(params)
    return out


def figures(infotexts: list[str]) -> dict[str, Any]:
    """Images, tagged images, distinct tags and "Lora hashes" entries of one generation."""
    tags: set[str] = set()
    tagged = hashes = 0
    for text in infotexts:
        params = parse_infotext(text)
        found = RE_TAG.findall(params["Prompt"])
        tags.update(found)
        tagged += bool(found)
        hashes += sum(1 for part in str(params.get("Lora hashes", "")).split(",") if part.strip())
    return {"images": len(infotexts), "tagged": tagged, "tags": sorted(tags), "hash_entries": hashes}


def check_scripts(api: Api) -> str:
    scripts = api.call("/sdapi/v1/scripts")
    names = [s.lower() for s in scripts.get("txt2img", [])]
    missing = [n for n in ("stylus", "stylus (always on)") if n not in names]
    return f"missing from /sdapi/v1/scripts: {missing}" if missing else ""


def check_hashes(infotexts: list[str]) -> str:
    """Every image's tags are exactly the LoRAs its "Lora hashes" says the WebUI loaded."""
    for text in infotexts:
        params = parse_infotext(text)
        tagged = set(RE_TAG.findall(params["Prompt"]))
        hashes = {part.split(":")[0].strip() for part in str(params.get("Lora hashes", "")).split(",") if part.strip()}
        if tagged != hashes:
            return f"tags {sorted(tagged)} but Lora hashes {sorted(hashes)} in: {params['Prompt'][:120]}"
    return "" if infotexts else "no infotexts returned"


def check_any_tagged(by_prompt: dict[str, list[str]]) -> str:
    """At least one image got a tag: else the tag checks prove nothing."""
    if any(RE_TAG.search(parse_infotext(t)["Prompt"]) for texts in by_prompt.values() for t in texts):
        return ""
    return "no image got a tag (no LoRA fits the prompts, or the index was not built): the checks prove nothing"


def check_paste_back(infotexts: list[str], prompt: str, parsed: list[dict[str, Any]] | None = None) -> str:
    """Pasting each image's parameters back gives ``prompt`` byte for byte. ``parsed``: the WebUI's own
    parse of each image (:func:`webui_parsed`); None applies Stylus's paste callback here instead."""
    if parsed is None:
        sys.path.insert(0, str(ROOT))
        from stylus_ext.webui.infotext import on_infotext_pasted

        parsed = []
        for text in infotexts:
            params = parse_infotext(text)
            on_infotext_pasted(text, params)
            parsed.append(params)
    for params in parsed:
        if params["Prompt"] != prompt:
            return f"pasted back {params['Prompt']!r}, typed {prompt!r}"
    return "" if parsed else "no images to paste back"


def check_broken(infotexts: list[str], catalog: dict[str, Any] | None = None) -> str:
    """The unreadable file gets no tag; in ``catalog`` (``/stylus/v1/catalog``) it is listed with its
    problem, not installed, and not counted in "installed"."""
    bad = [t for t in infotexts if f"<lora:{BROKEN}" in t]
    if bad:
        return f"{len(bad)} image(s) tagged the unreadable {BROKEN}"
    if catalog is None:
        return ""
    items = catalog.get("items") or []
    row = next((i for i in items if i.get("name") == BROKEN), None)
    if row is None:
        return f"{BROKEN} is not in the catalog: the check proves nothing"
    if row.get("installed") or not row.get("problem"):
        return f"{BROKEN} listed as installed={row.get('installed')} problem={row.get('problem')!r}"
    loadable = sum(1 for i in items if i.get("installed"))
    if len(items) == catalog.get("adapters") and catalog.get("installed") != loadable:
        return f"catalog says {catalog.get('installed')} installed, its rows {loadable}"
    return ""


def check_compose(api: Api) -> str:
    out = api.call("/stylus/v1/compose", {"prompt": PROMPTS[0], "seeds": [1, 2]})
    return "" if len(out.get("images", [])) == 2 else f"unexpected compose answer: {str(out)[:200]}"


def run_checks(api: Api, wait_index: float = 300.0) -> tuple[dict[str, str], dict[str, Any]]:
    """``(results, figures)``: each check's failure ("" = passed) and the numbers behind them."""
    results: dict[str, str] = {}
    numbers: dict[str, Any] = {}

    def record(name: str, fn: Any, *args: Any) -> None:
        try:
            results[name] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check
            results[name] = f"{type(exc).__name__}: {exc}"
        print(f"{'ok  ' if not results[name] else 'FAIL'} {name}" + (f": {results[name]}" if results[name] else ""))

    record("scripts listed", check_scripts, api)
    state = wait_for_index(api, wait_index)
    numbers["catalog"] = {k: state.get(k) for k in ("adapters", "installed", "indexed", "index_kind", "error")}
    by_prompt: dict[str, list[str]] = {}
    for prompt in PROMPTS:
        images, infotexts = _txt2img(api, prompt)
        by_prompt[prompt] = infotexts
        numbers[prompt] = figures(infotexts)
        parsed = webui_parsed(api, images)
        numbers[prompt]["paste_back_via"] = "/sdapi/v1/png-info" if parsed is not None else "Stylus callback"
        record(f"Lora hashes equal the tags ({prompt[:30]}…)", check_hashes, infotexts)
        record(f"paste-back byte for byte ({prompt[:30]}…)", check_paste_back, infotexts, prompt, parsed)
    record("at least one image tagged", check_any_tagged, by_prompt)
    state = api.call("/stylus/v1/catalog?limit=1000")  # after the generations: a rescan may have run
    record("broken file never tagged", check_broken, [t for v in by_prompt.values() for t in v], state)
    record("compose route answers", check_compose, api)
    return results, numbers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webui", type=Path, help="the WebUI folder (with --install / --launch)")
    ap.add_argument("--python", default="", help="the WebUI venv's python (default: <webui>/venv/bin/python)")
    ap.add_argument("--url", default="http://127.0.0.1:7860")
    ap.add_argument("--install", action="store_true", help="clone this checkout into extensions/ and run install.py")
    ap.add_argument("--launch", action="store_true", help="start launch.py with the flags after --")
    ap.add_argument("--wait", type=float, default=900.0, help="seconds to wait for the WebUI to answer")
    ap.add_argument("--wait-index", type=float, default=300.0, help="seconds to wait for Stylus's index")
    ap.add_argument("flags", nargs="*", help="WebUI flags for --launch (after --)")
    args = ap.parse_args(argv)
    if (args.install or args.launch) and not args.webui:
        ap.error("--install and --launch need --webui")
    python = args.python or (str(args.webui / "venv" / "bin" / "python") if args.webui else sys.executable)
    if args.install:
        install(args.webui, python)
    server = launch(args.webui, python, args.flags or ["--api"], args.webui / "stylus_check.log") \
        if args.launch else None
    try:
        api = Api(args.url)
        api.wait(args.wait)
        results, numbers = run_checks(api, args.wait_index)
    finally:
        if server is not None:
            server.terminate()
            server.wait(60)
    failures = sum(1 for v in results.values() if v)
    print(json.dumps({"url": args.url, "failures": failures, "results": results, "figures": numbers}, indent=1))
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
