"""How long each notebook of the lab path takes to execute, written as a table (LAB.md, README).

    python benchmarks/lab_times.py [--profiles laptop quick] [--notebooks 03_mnist ...]   measure, then render
    python benchmarks/lab_times.py --render-only                                      render from the CSV

Each notebook of `LAB_PATH` is executed with papermill through `notebooks/execute.py` (the same code
as `make notebooks`), one at a time, in the given profile, into `build/lab-times/<profile>/`, with a
fresh run cache `build/lab-times/<profile>/runs` per profile: 07 reuses the run 03 trained, as it does
in a lab where students go 01 -> 02 -> 03 -> 07, and nothing is reused from earlier measurements.
The wall time of each execution includes the kernel's start.  Each row records the machine:
processor (`/proc/cpuinfo`), cores, the torch threads a kernel gets (`torch.get_num_threads()` in
this process, whose environment the kernels inherit) and the 1-minute load average before the
notebook started, so that a table measured on a shared machine says so.

Results: `benchmarks/results-lab-times.csv` (rows replaced per profile and notebook, others kept),
`benchmarks/results-lab-times.md`, and `LAB.md` rendered from `benchmarks/LAB.md.j2`; the spans of
README.md's profile table saying "notebook 03 ... executed in <time> (`LAB.md`)" get that row's time
(the README carries no markup: the sentence itself is the span).
No time in LAB.md or in those README spans is typed by hand (`tests/test_lab.py` re-renders and
compares).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "benchmarks" / "results-lab-times.csv"
MD = REPO / "benchmarks" / "results-lab-times.md"
TEMPLATE = REPO / "benchmarks" / "LAB.md.j2"
LAB = REPO / "LAB.md"
README = REPO / "README.md"

# the lab path of LAB.md: (notebook, role, what the students do there)
LAB_PATH = [
    ("01_architecture", "lab", "build the network block by block, read the shapes"),
    ("02_losses", "lab", "MSE, perceptual and 1 - SSIM on shifted, blurred, noisy and defective images"),
    ("03_mnist", "lab", "a training step by hand, then one digit trained and scored: ROC, thresholds"),
    ("07_inspector", "lab", "03's run in the inspector: move the threshold, look at the errors"),
    ("05_mvtec", "optional", "one MVTec AD category, error maps beside the masks"),
]
FIELDS = ["profile", "step", "notebook", "role", "seconds", "ok", "data", "executed_at", "processor", "cores",
          "torch_threads", "load_before", "commit"]
SPAN_NOTEBOOK = "03_mnist"  # the notebook whose time the README's profile table quotes
SPAN = re.compile(r"(?m)^(?P<head>\| `(?P<profile>[\w-]+)` \|[^\n]*?notebook 03\b[^\n]*?executed in )"
                  r"(?P<body>[^\n]*?)(?P<tail> \(`LAB\.md`\))")


def processor() -> str:
    """The CPU's model name from /proc/cpuinfo (with AVX-512 or AVX2 said), else platform's word for it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name.group(1).strip() if name else platform.machine()} ({vector})"


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # Windows has no load average
        return "n/a"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def fmt_time(seconds: float) -> str:
    """'45 s' under 90 s, else '3.2 min': how LAB.md and the README print a measured time."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def read_rows(path: Path = CSV) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(rows: list[dict], path: Path = CSV) -> None:
    order = {name: i for i, (name, _, _) in enumerate(LAB_PATH)}
    rows = sorted(rows, key=lambda r: (r["profile"], order.get(r["notebook"], 99)))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _execute_module():
    spec = importlib.util.spec_from_file_location("notebooks_execute", REPO / "notebooks" / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure(profiles: list[str], notebooks: list[str], out: Path) -> None:
    """Execute each notebook in each profile (module docstring) and record each row as soon as it ends."""
    import nbformat
    import torch

    execute = _execute_module()
    roles = {name: (i + 1, role) for i, (name, role, _) in enumerate(LAB_PATH)}
    for profile in profiles:
        folder = out / profile
        shutil.rmtree(folder, ignore_errors=True)  # a fresh run cache: nothing trained earlier is reused
        work = folder / "runs"
        for name in notebooks:
            step, role = roles[name]
            load = load_average()
            execute.run(folder, [REPO / "notebooks" / f"{name}.ipynb"], {"PROFILE": profile, "WORK": str(work)})
            status = execute.json.loads((folder / execute.STATUS).read_text())[name]
            done = folder / f"{name}.ipynb"
            data = (execute.describe(nbformat.read(done, as_version=4).metadata["pyramid_ad"]["data_sources"])
                    if status["ok"] else status["message"])
            row = {"profile": profile, "step": step, "notebook": name, "role": role, "seconds": status["seconds"],
                   "ok": status["ok"], "data": data.replace(str(REPO), "."),
                   "executed_at": status.get("executed_at", ""), "processor": processor(), "cores": os.cpu_count(),
                   "torch_threads": torch.get_num_threads(), "load_before": load, "commit": commit()}
            rows = [r for r in read_rows() if (r["profile"], r["notebook"]) != (profile, name)] + [row]
            write_rows(rows)
            print(f"{profile} {name}: {fmt_time(status['seconds'])} ({'ok' if status['ok'] else 'FAILED'})",
                  flush=True)


def context(rows: list[dict]) -> dict:
    """What the templates need: rows by profile in lab order, totals of the lab steps, the machine."""
    by_profile: dict[str, list[dict]] = {}
    for r in rows:
        by_profile.setdefault(r["profile"], []).append({**r, "time": fmt_time(float(r["seconds"])),
                                                        "what": dict((n, w) for n, _, w in LAB_PATH)[r["notebook"]]})
    totals = {p: fmt_time(sum(float(r["seconds"]) for r in rs if r["role"] == "lab")) for p, rs in by_profile.items()}
    machines = sorted({f"{r['processor']}, {r['cores']} cores, {r['torch_threads']} torch thread(s)" for r in rows})
    numeric = sorted(float(r["load_before"]) for r in rows if r["load_before"] != "n/a")
    loads = f"{numeric[0]:.1f} to {numeric[-1]:.1f}" if numeric else "not measured (no load average here)"
    dates = sorted({r["executed_at"][:10] for r in rows if r["executed_at"]})
    lab = sum(float(r["seconds"]) for r in by_profile.get("laptop", []) if r["role"] == "lab")
    return {"profiles": by_profile, "totals": totals, "machines": machines, "loads": loads, "dates": dates,
            "left": fmt_time(90 * 60 - lab) if by_profile.get("laptop") else "not measured",
            "path": " -> ".join(n[:2] for n, role, _ in LAB_PATH if role == "lab"),
            "optional": [n for n, role, _ in LAB_PATH if role == "optional"]}


def results_md(ctx: dict) -> str:
    lines = ["# Lab path: notebook execution times", "",
             "Written by `python benchmarks/lab_times.py`; each notebook executed alone with papermill "
             "(`notebooks/execute.py`), a fresh run cache per profile.", "",
             f"Machine: {'; '.join(ctx['machines'])}. SHARED with other work while measured: 1-minute load "
             f"average before each notebook {ctx['loads']} (on {', '.join(ctx['dates'])}).", ""]
    for profile, rows in ctx["profiles"].items():
        lines += [f"## profile `{profile}`", "", "| step | notebook | role | wall time | load before | data |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['step']} | {r['notebook']} | {r['role']} | {r['time']}{'' if r['ok'] == 'True' else ' FAILED'}"
                  f" | {r['load_before']} | {r['data']} |" for r in rows]
        lines += ["", f"Lab steps together: {ctx['totals'][profile]}.", ""]
    return "\n".join(lines)


def spans(text: str) -> list[tuple[str, str]]:
    """(profile, notebook) of every README span that quotes a lab time."""
    return [(m["profile"], SPAN_NOTEBOOK) for m in SPAN.finditer(text)]


def render_readme(text: str, rows: list[dict]) -> str:
    """README.md with each span holding its row's measured time; a span with no row is an error."""
    found = {(r["profile"], r["notebook"]): r for r in rows}

    def fill(m: re.Match) -> str:
        key = (m["profile"], SPAN_NOTEBOOK)
        if key not in found:
            raise KeyError(f"README.md asks for lab time {key}, which {CSV.name} does not have")
        r = found[key]
        return (f"{m['head']}{fmt_time(float(r['seconds']))} on a shared {r['cores']}-core machine, load average "
                f"{r['load_before']}{m['tail']}")
    return SPAN.sub(fill, text)


def render(rows: list[dict]) -> dict[Path, str]:
    """The text each generated file should have, from the CSV's rows."""
    import jinja2

    ctx = context(rows)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return {MD: results_md(ctx), LAB: env.get_template(TEMPLATE.name).render(**ctx),
            README: render_readme(README.read_text(encoding="utf-8"), rows)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["laptop", "quick"])
    parser.add_argument("--notebooks", nargs="+", default=[n for n, _, _ in LAB_PATH],
                        choices=[n for n, _, _ in LAB_PATH])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "lab-times")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the tables from the CSV")
    args = parser.parse_args(argv)
    if not args.render_only:
        measure(args.profiles, args.notebooks, args.out)
    for path, text in render(read_rows()).items():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        print(f"wrote {path.relative_to(REPO)}")
    print(f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
