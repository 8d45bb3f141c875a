"""The lab's sub-commands of `pyramid-ad`: check, export, import, lab, fetch (arguments.py adds them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs

from ..paper import MVTEC_CATEGORIES
from ..tutorial import default_data, default_work
from .check import check
from .fetch import fetch_mvtec, table_text
from .handout import export_run, import_run, lab_copies


def default_lab_folder() -> Path:
    """Where `pyramid-ad lab` puts a student's copies of the notebooks: $PYRAMID_LAB, else
    <Documents>/pyramid-ad-lab (platformdirs)."""
    return Path(os.environ.get("PYRAMID_LAB") or platformdirs.user_documents_path() / "pyramid-ad-lab")


def add_lab_commands(sub) -> None:
    """Add check, export, import, lab and fetch to `sub` (arguments.py's subparsers)."""
    p = sub.add_parser("check", help="can this machine do the lab? Python, torch, data, threads, disk, a timed "
                       "training step (under a minute)", description="Prints what this machine offers the lab, "
                       "one line each, and a verdict; exits 1 when it cannot do the lab.")
    p.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda, ...")
    p.add_argument("--data-root", help="the notebooks' data root (default $PYRAMID_DATA, else the kit's data/)")
    p.add_argument("--work", help="the notebooks' run cache (default $PYRAMID_WORK, else your user cache folder)")

    p = sub.add_parser("export", help="write a finished notebook run into a zip to hand out (weights without the "
                       "optimiser, its records and data hashes)")
    p.add_argument("run", metavar="RUN", help="a run folder, or a run's name in the notebooks' cache")
    p.add_argument("out", metavar="OUT.zip")
    p.add_argument("--work", help="the run cache RUN is looked up in (default: the notebooks')")

    p = sub.add_parser("import", help="put a handed-out run (from `pyramid-ad export`) into the notebooks' run cache")
    p.add_argument("zip", metavar="RUN.zip")
    p.add_argument("--work", help="the run cache (default $PYRAMID_WORK, else your user cache folder)")

    p = sub.add_parser("lab", help="copy the notebooks into your own lab folder and open JupyterLab there",
                       description="Copies the numbered notebooks into --folder (copies already there are yours: "
                       "kept), then starts JupyterLab in it; the kit's own notebooks are never opened.")
    p.add_argument("--folder", help="default: $PYRAMID_LAB, else <Documents>/pyramid-ad-lab")
    p.add_argument("--no-launch", action="store_true", help="copy only; print how to start JupyterLab")

    p = sub.add_parser("fetch", help="download MVTec AD categories (checked, resumable) into the data root",
                       description="Downloads MVTec AD archives (CC BY-NC-SA 4.0, MVTec's) into "
                       "<data-root>/mvtec_ad/, checks size and SHA-256 where published, extracts safely. "
                       "--list prints the table of archives.")
    p.add_argument("dataset", choices=("mvtec",))
    p.add_argument("--category", nargs="+", metavar="NAME", default=None,
                   help=f"one or more of {', '.join(sorted(MVTEC_CATEGORIES))}, or all (the whole dataset)")
    p.add_argument("--data-root", help="default $PYRAMID_DATA, else the kit's data/")
    p.add_argument("--url", help="one category: download it from here instead (a room's own copy; file:// too)")
    p.add_argument("--sha256", help="one category: the SHA-256 it must have")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extracting it")
    p.add_argument("--list", action="store_true", help="print the archives, sizes and checksums, download nothing")


def cmd_check(a) -> int:
    report = check(a.device, a.data_root, a.work, say=print)
    print(report.verdict())
    return 0 if report.ok else 1


def cmd_export(a) -> int:
    print(f"wrote {export_run(a.run, a.out, a.work)}")
    return 0


def cmd_import(a) -> int:
    import_run(a.zip, a.work)
    return 0


def cmd_lab(a) -> int:
    folder = Path(a.folder) if a.folder else default_lab_folder()
    lab_copies(folder)
    command = [sys.executable, "-m", "jupyterlab"]  # its root is the folder it starts in
    if a.no_launch:
        print(f"start JupyterLab there with: cd \"{folder}\" && " + " ".join(f'"{c}"' if " " in c else c
                                                                         for c in command))
        return 0
    print(f"runs are cached in {default_work()}; starting JupyterLab in {folder}")
    return subprocess.call(command, cwd=folder)


def cmd_fetch(a) -> int:
    if a.list or not a.category:
        print(table_text())
        if not a.list:
            print("give --category NAME ... to download")
        return 0
    root = Path(a.data_root) if a.data_root else default_data()
    fetch_mvtec(a.category, root, a.url, a.sha256, a.keep_archive)
    return 0


LAB_COMMANDS = {"check": cmd_check, "export": cmd_export, "import": cmd_import, "lab": cmd_lab, "fetch": cmd_fetch}
