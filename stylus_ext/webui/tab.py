"""The "Stylus" tab: catalog status, refresh with progress, adapter table (a click on a row selects
the adapter, a click on its pinned/banned cell switches it; weight override below), and a prompt
playground (candidates, concepts, selections, reasons).

The data functions are plain (tested without gradio); :func:`build` only lays them out.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from stylus_ext.catalog.readable import fatal_problem
from stylus_ext.webui import controls
from stylus_ext.webui.runtime import Runtime, catalog_state, for_webui

TABLE_HEADERS = ["id", "name", "category", "base model", "description", "pinned", "banned", "weight override",
                 "installed", "problem"]


def status_markdown(runtime: Runtime, refresher: Any = None) -> str:
    state = catalog_state(runtime.catalog_path())
    lines = [f"**Catalog:** `{state.path}`"]
    if state.error:
        lines.append(f"**Problem:** {state.error}")
    elif not state.exists:
        lines.append("No catalog yet: press *Refresh catalog* (it also runs in the background on start).")
    else:
        lines.append(f"**Adapters:** {state.adapters} ({state.installed} installed) — **index:** "
                     + (f"{state.indexed} vectors, {state.index_kind}, encoder `{state.encoder}`"
                        if state.indexed else "not built yet"))
        try:
            catalog = runtime.catalog()
            adapters = catalog.adapters()
            by_base = Counter(a.card.base_model or "unknown" for a in adapters)
            by_cat = Counter(a.category for a in adapters)
            lines.append("**By base model:** " + ", ".join(f"{k} {v}" for k, v in by_base.most_common()))
            lines.append("**By category:** " + ", ".join(f"{k} {v}" for k, v in by_cat.most_common()))
            problems = catalog.problems()
            if problems:
                lines.append(f"**Files with problems:** {len(problems)} (e.g. {html.escape(problems[0][1])})")
        except Exception as exc:  # noqa: BLE001
            lines.append(f"(counts unavailable: {exc})")
    if refresher is not None:
        lines.append(f"**Background refresh:** {refresher.status}")
    return "\n\n".join(lines)


def adapter_rows(catalog: Any, query: str = "", limit: int = 300) -> list[list[Any]]:
    """Rows of the adapter table, filtered by a case-insensitive substring of name/title/description/tags."""
    q = (query or "").strip().lower()
    rows = []
    for a in catalog.adapters():
        hay = " ".join([a.name, a.title, a.description, " ".join(a.card.tags), a.category]).lower()
        if q and q not in hay:
            continue
        problem = fatal_problem(a.card.problems) if a.installed else ""
        rows.append([a.id, a.name, a.category, a.card.base_model, (a.description or "")[:160],
                     a.pinned, a.banned, "" if a.weight_override is None else a.weight_override,
                     a.installed and not problem, problem])
        if len(rows) >= limit:
            break
    return rows


def table_value(rows: list[list[Any]]) -> dict[str, Any]:
    """The Dataframe value with its column names: a plain (or empty) list would lose the headers
    (gradio shows "1 2 3 ..."); a ``{"headers", "data"}`` dict keeps them on gradio 3.41 and 4.x."""
    return {"headers": list(TABLE_HEADERS), "data": rows or [[""] * len(TABLE_HEADERS)]}


def set_controls(catalog: Any, adapter_id: Any, pinned: bool, banned: bool, weight: Any) -> str:
    """Apply pin/ban/weight override to one adapter; a one-line result."""
    try:
        aid = int(adapter_id)
    except (TypeError, ValueError):
        return "Enter the adapter id (first column)."
    override: float | None
    if weight in (None, "", "none"):
        override = None
    else:
        try:
            override = float(weight)
        except (TypeError, ValueError):
            return f"Weight override must be a number, not {weight!r}."
        if not -4.0 <= override <= 4.0:
            return "Weight override must be between -4 and 4."
    try:
        catalog.set_controls(aid, pinned=bool(pinned), banned=bool(banned), weight_override=override)
    except KeyError:
        return f"No adapter with id {aid}."
    return f"Adapter {aid}: pinned={bool(pinned)}, banned={bool(banned)}, weight override={override}."


def click_cell(catalog: Any, data: Any, row: int, col: int) -> tuple[str, Any, bool, bool, Any]:
    """A click in the adapter table: on the "pinned" or "banned" cell it toggles that control at once;
    elsewhere it selects the adapter (fills id, pinned, banned and weight override below the table).
    Returns ``(message, id, pinned, banned, weight override)``."""
    rows = data.get("data") if isinstance(data, dict) else data
    try:
        values = list(rows[int(row)])
        aid = int(values[0])
    except (TypeError, ValueError, IndexError, KeyError):
        return "Click a row of the table.", None, False, False, ""
    adapter = catalog.get(aid)
    if adapter is None:
        return f"No adapter with id {aid}.", None, False, False, ""
    pinned, banned = bool(adapter.pinned), bool(adapter.banned)
    weight = "" if adapter.weight_override is None else adapter.weight_override
    column = TABLE_HEADERS[int(col)] if 0 <= int(col) < len(TABLE_HEADERS) else ""
    if column in ("pinned", "banned"):
        pinned, banned = (not pinned, banned) if column == "pinned" else (pinned, not banned)
        return set_controls(catalog, aid, pinned, banned, weight), aid, pinned, banned, weight
    return f"Selected {adapter.name} (id {aid}): click its pinned or banned cell to switch it.", aid, pinned, \
        banned, weight


def playground(prompt: str, options: controls.RunOptions, runtime: Runtime, *, seeds: tuple[int, ...] = (1, 2, 3, 4),
               candidates: int = 10) -> str:
    """HTML: retrieval candidates, concepts with chosen adapters and reasons, per-image prompts."""
    if not (prompt or "").strip():
        return "<p>Write a prompt first.</p>"
    state = runtime.state()
    if not state.ready:
        return f"<p>No index yet ({html.escape(state.error or 'press Refresh catalog in the Stylus tab')}).</p>"
    st = runtime.pipeline_settings(options)
    stylus = runtime.pipeline(st)
    found = stylus.retrieve(prompt)[:candidates]
    selection, dropped = runtime.guard.filter(stylus.select(prompt))  # no tag for a file that cannot load
    images = stylus.images(selection, list(seeds))
    e = html.escape
    base = e(str(st.base_model or ("unknown (every base model)" if options.base_model == "auto" else "any")))
    parts = [f"<p><b>Composer:</b> {e(str(selection.composer))} — <b>base model:</b> {base}</p>"]
    parts.append("<p><b>Concepts and selections</b></p><ul>")
    for concept, chosen in selection.concepts:
        picks = "; ".join(f"{e(c.adapter.name)} — {e(c.reason)}" for c in chosen) or "<i>no adapter</i>"
        parts.append(f"<li><b>{e(concept)}</b>: {picks}</li>")
    parts.append("</ul>")
    for w in (*selection.warnings, *dropped):
        parts.append(f"<p>⚠ {e(for_webui(w))}</p>")
    parts.append("<p><b>Top candidates</b></p><ol>")
    parts += [f"<li>{e(c.adapter.name)} ({e(c.adapter.category)}, score {c.score:.3f})</li>" for c in found]
    parts.append("</ol><p><b>Per-image prompts</b></p><ul>")
    parts += [f"<li>seed {img.seed}: <code>{e(img.prompt)}</code></li>" for img in images]
    parts.append("</ul>")
    return "".join(parts)


def refresh_progress(runtime: Runtime, refresher: Any, *, interval: float = 1.0,
                     limit: float = 600.0) -> Iterator[str]:
    """Start a background refresh and yield the status while it runs (a gradio generator: the tab
    shows each phase and the elapsed time live), then the final status."""
    start = time.monotonic()
    refresher.start("from the Stylus tab", force=True)
    while refresher.running and time.monotonic() - start < limit:
        yield f"⏳ **Refreshing** ({time.monotonic() - start:.0f} s): {refresher.status}"
        time.sleep(interval)
    yield status_markdown(runtime, refresher)


def _adapters_tab(gr: Any, rt: Runtime, search: Any) -> None:
    """The "Adapters" tab: search, the table (a click selects, a click on pinned/banned switches), the
    weight override row."""
    query = gr.Textbox(label="Search", placeholder="name, tag, description…")
    gr.Markdown("Click a row to select an adapter; click its *pinned* or *banned* cell to switch it.")
    table = gr.Dataframe(headers=TABLE_HEADERS, value=search, interactive=False, wrap=True, type="array")
    with gr.Row():
        aid = gr.Number(label="Adapter id", precision=0)
        pinned = gr.Checkbox(label="Pinned")
        banned = gr.Checkbox(label="Banned")
        weight = gr.Textbox(label="Weight override (empty = none)")
        apply_btn = gr.Button("Apply")
    result = gr.Markdown()

    def apply(adapter_id: Any, pin: bool, ban: bool, w: Any, query_text: str) -> tuple[str, dict[str, Any]]:
        msg = set_controls(rt.catalog(), adapter_id, pin, ban, w)
        rt.invalidate()
        return msg, search(query_text)

    def on_select(data: Any, query_text: str, evt: Any) -> tuple[Any, ...]:
        row, col = [*list(evt.index), 0, 0][:2]
        msg, sel_id, pin, ban, w = click_cell(rt.catalog(), data, row, col)
        rt.invalidate()
        return msg, search(query_text), sel_id, pin, ban, w

    # gradio passes the clicked cell to a parameter annotated with the real class (not a string)
    on_select.__annotations__["evt"] = gr.SelectData
    query.submit(fn=search, inputs=[query], outputs=[table])
    apply_btn.click(fn=apply, inputs=[aid, pinned, banned, weight, query], outputs=[result, table])
    table.select(fn=on_select, inputs=[table, query], outputs=[result, table, aid, pinned, banned, weight])


def build() -> list[tuple[Any, str, str]]:
    """``on_ui_tabs`` callback."""
    import gradio as gr

    from stylus_ext.webui.lora_source import get_refresher
    from stylus_ext.webui.runtime import get_runtime

    rt = get_runtime()
    refresher = get_refresher()

    def refresh() -> Iterator[str]:
        yield from refresh_progress(rt, refresher)

    def search(query: str = "") -> dict[str, Any]:
        try:
            return table_value(adapter_rows(rt.catalog(), query))
        except Exception:  # noqa: BLE001 - a broken catalog shows an empty table (the status says why)
            return table_value([])

    def status_now() -> str:
        return status_markdown(rt, refresher)

    def play(prompt: str, mask: str, max_adapters: float, strength: float, composer: str) -> str:
        options = controls.read([mask, max_adapters, strength, None, composer], rt.default_options(),
                                composers=rt.composer_names())
        try:
            return playground(prompt, options, rt)
        except Exception as exc:  # noqa: BLE001
            return f"<p>Stylus failed: {html.escape(str(exc))}</p>"

    with gr.Blocks(analytics_enabled=False) as tab:
        with gr.Row():
            # callables: re-evaluated on every page load (the UI is built before the first refresh)
            status = gr.Markdown(status_now)
        with gr.Row():
            refresh_btn = gr.Button("Refresh catalog (scan + index)")
            status_btn = gr.Button("Update status")
        with gr.Tab("Adapters"):
            _adapters_tab(gr, rt, search)
        with gr.Tab("Playground"):
            prompt = gr.Textbox(label="Prompt", lines=2)
            with gr.Row():
                mask = gr.Dropdown(label="Masking", choices=list(controls.MASKS), value="paper")
                max_a = gr.Slider(label="Max adapters", minimum=0, maximum=8, step=1, value=4)
                strength = gr.Slider(label="Strength", minimum=0, maximum=2, step=0.05, value=0.8)
                composer = gr.Dropdown(label="Composer", choices=["default", *rt.composer_names()], value="default")
            run_btn = gr.Button("Compose (no generation)")
            out = gr.HTML()
        refresh_btn.click(fn=refresh, inputs=[], outputs=[status])
        status_btn.click(fn=status_now, inputs=[], outputs=[status])
        run_btn.click(fn=play, inputs=[prompt, mask, max_a, strength, composer], outputs=[out])
    return [(tab, "Stylus", "stylus")]
