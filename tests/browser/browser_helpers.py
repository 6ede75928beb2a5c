"""Browser-check helpers shared by tests/browser/ and scripts/screenshots.py.

Headless Debian Chromium (/usr/bin/chromium) driven by Playwright; `dagster dev` started and
stopped as its own process group.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from orchestration.instance import ensure_instance_yaml

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHURN_TEST_CHROMIUM", "/usr/bin/chromium"))
# no background traffic: the network is closed, and every refused connection would be console noise
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pipeline_env(dagster_home: Path, data_dir: Path, **churn: str) -> dict:
    """The environment of a run: only the given CHURN_* settings, the venv first on PATH (dbt)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update({"DAGSTER_HOME": str(dagster_home), "CHURN_DATA_DIR": str(data_dir),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", **churn})
    return env


def run_pipeline(env: dict, timeout: float = 900) -> str:
    """`python -m orchestration.run`: the job `churn_pipeline` on the persistent instance; its run id."""
    ensure_instance_yaml(Path(env["DAGSTER_HOME"]))
    proc = subprocess.run([sys.executable, "-m", "orchestration.run"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"\(run ([0-9a-f-]{36})\)", proc.stdout)
    assert m, proc.stdout
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc: subprocess.Popen) -> None:
    """Stop `dagster dev` and everything it started (its own process group)."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    # children may outlive the leader briefly; make sure none is left
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def start_dagster_dev(env: dict, log_path: Path, timeout: float = 300):
    """Start `dagster dev` on 127.0.0.1 and a free port; returns (process, base URL) once it answers."""
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    log = log_path.open("w")
    proc = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"dagster dev did not answer in {timeout:.0f}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        # the code location must be loaded, and the one-time community dialog marked as seen
        while True:
            data = graphql(base, "{ workspaceOrError { ... on Workspace { locationEntries { "
                                 "locationOrLoadError { __typename } } } } }")
            entries = data["data"]["workspaceOrError"].get("locationEntries") or []
            if entries and all((e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
                               for e in entries):
                break
            if time.time() > deadline:
                raise RuntimeError(f"the code location did not load: {data}\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        graphql(base, "mutation { setNuxSeen }")
    except BaseException:
        stop_process_group(proc)
        raise
    return proc, base


# --- the Dagster UI ---------------------------------------------------------------------------

def asset_nodes(base: str) -> list[dict]:
    """Every asset of the loaded code location: key (user string) and group."""
    data = graphql(base, "{ assetNodes { assetKey { path } groupName } }")
    return [{"key": "/".join(n["assetKey"]["path"]), "group": n["groupName"]} for n in data["data"]["assetNodes"]]


def stage_keys(base: str) -> tuple[list[str], list[str]]:
    """One asset per stage (ingest, dbt, model, score) and every publish asset, with their groups.

    The publish step is matched loosely: one asset (published_churn_tables) or one per table (published/...).
    """
    nodes = asset_nodes(base)
    keys = [n["key"] for n in nodes]
    dbt = [k for k in keys if k.endswith("fct_churn_period") and not k.startswith("publish")]
    published = [k for k in keys if k.startswith("publish")]
    assert dbt and published, f"no dbt fct_churn_period or publish asset among {keys}"
    wanted = ["raw/customers", dbt[0], "churn_model", "customer_churn_scores", *published]
    assert set(wanted) <= set(keys), (wanted, keys)
    return wanted, sorted({n["group"] for n in nodes if n["key"] in wanted})


def asset_graph_url(base: str, keys: list[str], groups: list[str]) -> str:
    """The global asset lineage, narrowed to `keys`, with their groups expanded."""
    query = " or ".join(f'key:"{k}"' for k in keys)
    expanded = ",".join(f"global@global:{g}" for g in sorted(set(groups)))
    return (f"{base}/asset-groups~{urllib.parse.quote(query, safe='')}"
            f"?expanded={urllib.parse.quote(expanded, safe='')}")


def _label_matches(label: str, name: str) -> bool:
    # long names are shortened in the middle ("customer_c…_scores")
    pattern = ".*".join(re.escape(part) for part in label.split("…"))
    return re.fullmatch(pattern, name) is not None


def match_labels(labels: list[str], names: list[str]) -> dict[str, str | None]:
    """Assign each asset name (last key part) a distinct node label showing it."""
    free = list(labels)
    found: dict[str, str | None] = {}
    for name in sorted(names, key=len, reverse=True):
        hit = next((lab for lab in free if _label_matches(lab, name)), None)
        if hit is not None:
            free.remove(hit)
        found[name] = hit
    return found


GRAPH_LABELS_JS = """(visibleOnly) => {
  // the graph is the largest svg; a label is visible when its box lies inside the graph's panel
  const svgs = Array.from(document.querySelectorAll('svg'));
  const area = el => { const r = el.getBoundingClientRect(); return r.width * r.height; };
  const graph = svgs.sort((a, b) => area(b) - area(a))[0];
  if (!graph) return [];
  // the graph's panel: the first ancestor of the (panned, zoomed) svg that lies within the window
  let panel = graph.parentElement;
  while (panel.parentElement) {
    const r = panel.getBoundingClientRect();
    if (r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight + 1 && r.right <= window.innerWidth + 1) break;
    panel = panel.parentElement;
  }
  const p = panel.getBoundingClientRect();
  // the selection bar floats over the top of the graph
  const bar = document.getElementById('asset-selection-input');
  const barBottom = bar ? bar.getBoundingClientRect().bottom + 8 : 0;
  const view = {left: p.left, right: p.right, bottom: p.bottom, top: Math.max(p.top, barBottom)};
  return Array.from(graph.querySelectorAll('foreignObject')).filter(f => {
    if (!visibleOnly) return true;
    const r = f.getBoundingClientRect();
    return r.width > 0 && r.left >= view.left - 1 && r.right <= view.right + 1 && r.top >= view.top - 1
      && r.bottom <= view.bottom + 1;
  }).map(f => ((f.firstElementChild && f.firstElementChild.innerText) || f.textContent || '').trim()
    .split('\\n')[0].trim()).filter(t => t);
}"""


def graph_labels(page, visible_only: bool = False) -> list[str]:
    """The title (first line) of the node and group boxes in the asset graph (optionally: only those on screen)."""
    return page.evaluate(GRAPH_LABELS_JS, visible_only)


def _settle(page, timeout: float = 30) -> None:
    """Wait until no node still shows 'Loading' (its live status: latest materialization, checks)."""
    deadline = time.time() + timeout
    while time.time() < deadline and page.evaluate(
            "() => Array.from(document.querySelectorAll('svg foreignObject'))"
            ".some(f => (f.textContent || '').includes('Loading'))"):
        page.wait_for_timeout(500)


def open_asset_graph(page, base: str, keys: list[str], groups: list[str], timeout: float = 90) -> dict:
    """Open the asset graph of `keys` and zoom out until a node on screen shows each of them.

    Returns {key: the label of its node, or None}. Long names are shortened in the middle.
    """
    names = [k.split("/")[-1] for k in keys]
    page.goto(asset_graph_url(base, keys, groups))
    deadline = time.time() + timeout
    while not graph_labels(page) and time.time() < deadline:
        page.wait_for_timeout(500)
    _settle(page)
    while True:
        # nodes off screen are not drawn; give the ones on screen a moment, then zoom out a step
        step_end = min(time.time() + 3, deadline)
        while True:
            visible = graph_labels(page, True)
            found = match_labels(visible, names)
            fits = all(found.values()) and len(visible) == len(graph_labels(page))
            if fits or time.time() > step_end:
                break
            page.wait_for_timeout(300)
        if fits or time.time() > deadline:
            break
        page.locator("[aria-label='zoom_out']").first.click()
        page.wait_for_timeout(400)
    _settle(page)
    return {k: found[n] for k, n in zip(keys, names)}


RUN_ROW_JS = """(job) => {
  // run links show the first 8 characters of the run id; the first one is the newest run
  const links = Array.from(document.querySelectorAll('a[href*="/runs/"]'))
    .filter(a => /^[0-9a-f]{8}$/.test(a.textContent.trim()));
  if (!links.length) return null;
  let row = links[0];
  while (row && !(row.innerText || '').includes(job)) row = row.parentElement;
  return {id: links[0].textContent.trim(), text: row ? row.innerText : ''};
}"""


def last_run_row(page, base: str, job: str = "churn_pipeline", timeout: float = 60) -> dict:
    """The newest run on /runs: {id: first 8 characters of its id, text: its row's text}."""
    page.goto(f"{base}/runs")
    page.locator('a[href*="/runs/"]').first.wait_for(timeout=timeout * 1000)
    deadline = time.time() + timeout
    while True:
        row = page.evaluate(RUN_ROW_JS, job)
        # the status tag fills in after the row itself
        if (row and re.search(r"\b(Success|Failure|Canceled)\b", row["text"])) or time.time() > deadline:
            return row or {"id": None, "text": ""}
        page.wait_for_timeout(500)


# --- the HTML report --------------------------------------------------------------------------

CHART_STATE_JS = """() => {
  const box = el => { const r = el.getBoundingClientRect(); return {w: r.width, h: r.height}; };
  const out = [];
  for (const el of document.querySelectorAll('img')) {
    out.push({kind: 'img', name: el.alt || el.src.slice(0, 40), ok: el.complete && el.naturalWidth > 0
              && el.naturalHeight > 0, natural: [el.naturalWidth, el.naturalHeight], ...box(el)});
  }
  for (const el of document.querySelectorAll('svg')) {
    out.push({kind: 'svg', name: el.id || el.getAttribute('aria-label') || 'svg',
              ok: el.querySelectorAll('*').length > 0, ...box(el)});
  }
  for (const el of document.querySelectorAll('canvas')) {
    let painted = false;
    const ctx = el.width && el.height ? el.getContext('2d') : null;
    if (ctx) {
      const px = ctx.getImageData(0, 0, el.width, el.height).data;
      for (let i = 3; i < px.length; i += 4) { if (px[i] !== 0) { painted = true; break; } }
    } else {
      painted = el.width > 0 && el.height > 0;
    }
    out.push({kind: 'canvas', name: el.id || 'canvas', ok: painted, ...box(el)});
  }
  return out;
}"""


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
