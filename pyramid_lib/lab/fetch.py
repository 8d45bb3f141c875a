"""`pyramid-ad fetch mvtec --category bottle ...`: MVTec AD's archives, downloaded for a room.

One table (`MVTEC`) names every archive: its URL, its size and SHA-256 where they are published,
and where the URL comes from (like anomalib's `DownloadInfo`).  A download is resumable (an
interrupted `<name>.part` continues with an HTTP Range request where the server allows it, else
starts again), checked (size, then SHA-256) before it is used, and extracted into a temporary
folder inside the data root that is renamed into place only when complete, with every archive
member checked first (no absolute paths, no `..`, no links or devices: tarfile's `data` filter
as well).  Where no checksum is published the download is said to be UNVERIFIED and the SHA-256
of what arrived is printed and recorded beside the data (`.pyramid-fetch.json`), so a lecturer
can pin it for the room with --sha256 (and serve a copy on the room's own server with --url).

MVTec AD is licensed CC BY-NC-SA 4.0 (non-commercial); the archives are MVTec's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import DataError
from ..files import atomic_write_json
from ..paper import MVTEC_CATEGORIES
from ..progress import tqdm

CHUNK = 1 << 20


@dataclass(frozen=True)
class DownloadInfo:
    """One archive: `name` (its category, or "all"), `url`, `size` in bytes and `sha256` where
    they are published (None: not published; the download is then unverified), `source` of the
    URL and checksum."""

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    source: str = ""

    @property
    def filename(self) -> str:
        return PurePosixPath(self.url.split("?")[0]).name or f"{self.name}.tar.xz"


_SHARE = "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
_PER_CATEGORY = "the per-category links on MVTec's download page, as two public repositories list them alike"
_IDS = {"bottle": "420937370-1629951468", "cable": "420937413-1629951498", "capsule": "420937454-1629951595",
        "carpet": "420937484-1629951672", "grid": "420937487-1629951814", "hazelnut": "420937545-1629951845",
        "leather": "420937607-1629951964", "metal_nut": "420937637-1629952063", "screw": "420938130-1629953152",
        "tile": "420938133-1629953189", "toothbrush": "420938134-1629953256",
        "transistor": "420938166-1629953277", "wood": "420938383-1629953354", "zipper": "420938385-1629953449"}
MVTEC: dict[str, DownloadInfo] = {
    **{c: DownloadInfo(c, f"{_SHARE}{i}/{c}.tar.xz", source=_PER_CATEGORY) for c, i in _IDS.items()},
    "pill": DownloadInfo("pill", "https://www.mydrive.ch/shares/43421/11a215a5749fcfb75e331ddd5f8e43ee/download/"
                         "420938129-1629953099/pill.tar.xz", source=_PER_CATEGORY),
    # the whole dataset: size and SHA-256 as anomalib's DownloadInfo and two independent records of it state
    "all": DownloadInfo("all", f"{_SHARE}420938113-1629952094/mvtec_anomaly_detection.tar.xz", 5_264_982_680,
                        "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d", "anomalib (DownloadInfo)"),
}
assert set(MVTEC) == {*MVTEC_CATEGORIES, "all"}


def size_text(n: int | None) -> str:
    return "size not published" if n is None else f"{n:,} bytes ({n / 2**30:.2f} GiB)" if n >= 2**30 else \
        f"{n:,} bytes ({n / 2**20:.1f} MiB)"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(info: DownloadInfo, folder: Path, say=print, progress: bool = True) -> tuple[Path, str]:
    """Download `info` into `folder` (resuming a `.part` left there) and check it; returns (archive, its
    SHA-256).  DataError when the size or checksum differs (the bad file is removed) or the server fails."""
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / info.filename, folder / (info.filename + ".part")
    if not final.is_file():
        have = part.stat().st_size if part.is_file() else 0
        req = urllib.request.Request(info.url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                resumed = have and getattr(r, "status", None) == 206
                have = have if resumed else 0
                length = r.headers.get("Content-Length")
                total = have + int(length) if length else info.size
                say(f"downloading {info.url}\n  -> {final} ({size_text(total)}"
                    f"{f', resuming after {have:,} bytes' if resumed else ''})")
                with open(part, "ab" if resumed else "wb") as out, \
                        tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                             desc=info.filename) as bar:
                    for block in iter(lambda: r.read(CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
        except OSError as e:  # URLError, HTTPError, a dropped connection: the .part stays for the next try
            raise DataError(f"downloading {info.url} failed ({e}); run the same command again to resume") from e
        got = part.stat().st_size
        if info.size is not None and got != info.size:
            if got > info.size:
                part.unlink()
            raise DataError(f"{info.url}: {got:,} bytes arrived, {info.size:,} expected; "
                            + ("removed it, run again" if got > info.size else "run the same command again to resume"))
        os.replace(part, final)
    digest = sha256_of(final)
    if info.sha256 is not None and digest != info.sha256.lower():
        final.unlink()
        raise DataError(f"{info.url}: SHA-256 {digest} differs from the expected {info.sha256}: a damaged or "
                        "different file; removed it. Run again, or check --url / --sha256")
    return final, digest


def _check_member(m: tarfile.TarInfo, archive) -> None:
    posix, win = PurePosixPath(m.name), PureWindowsPath(m.name)  # a Windows student extracts it too
    if posix.is_absolute() or win.is_absolute() or win.drive or ".." in posix.parts or ".." in win.parts:
        raise DataError(f"{archive}: member {m.name!r} would be written outside the data folder; refused")
    if not (m.isfile() or m.isdir()):
        raise DataError(f"{archive}: member {m.name!r} is a link or a device, not a file or folder; refused")


def extract(archive: Path, into: Path, say=print) -> list[str]:
    """Extract the tar archive into `into` safely: every member is checked first (`_check_member`:
    DataError for an absolute path, '..', a link or a device), the whole archive goes to a temporary
    folder inside `into`, then each top-level folder is renamed into place (one already there is
    kept and named).  Returns the top-level names placed."""
    into.mkdir(parents=True, exist_ok=True)
    tmp = into / f".extract-{archive.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, archive)
            say(f"extracting {len(members)} files and folders from {archive.name}")
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **kwargs)
        placed = []
        for top in sorted(tmp.iterdir()):
            target = into / top.name
            if target.exists():
                say(f"  {target} is there already: kept it as it is")
                continue
            os.replace(top, target)
            placed.append(top.name)
        return placed
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive}: not a readable tar archive ({e}); delete it and fetch again") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_mvtec(categories, root, url: str | None = None, sha256: str | None = None, keep_archive: bool = False,
                say=print, progress: bool = True) -> list[dict]:
    """Fetch MVTec AD categories (or "all") into <root>/mvtec_ad/: for each, skip it when its folder
    is there, else download, check and extract it, and record what arrived in
    <category>/.pyramid-fetch.json.  `url` and `sha256` replace the table's for a single category (a
    room's own copy).  Returns one record per category.  DataError for an unknown category, a failed
    or damaged download or an unsafe archive."""
    categories = list(dict.fromkeys(categories))
    unknown = [c for c in categories if c not in MVTEC]
    if unknown:
        raise DataError(f"unknown MVTec AD categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                        f"choose from {', '.join(sorted(MVTEC))}")
    if (url or sha256) and len(categories) != 1:
        raise DataError("--url and --sha256 describe one archive: give exactly one --category with them")
    data = Path(root) / "mvtec_ad"
    out = []
    for c in categories:
        info = MVTEC[c]
        if url or sha256:
            info = DownloadInfo(c, url or info.url, None if url else info.size, sha256 or None,
                                "given on the command line")
        wanted = list(MVTEC_CATEGORIES) if c == "all" else [c]
        if all((data / w / "train").is_dir() for w in wanted):
            say(f"{c}: already in {data} (delete the folder to fetch it again)")
            out.append({"category": c, "status": "present"})
            continue
        archive, digest = download(info, data / ".downloads", say, progress)
        verified = info.sha256 is not None
        say(f"{c}: SHA-256 {digest} " + ("matches the expected one" if verified else
            "UNVERIFIED: no checksum is published for this archive; pin it for a room with --sha256"))
        placed = extract(archive, data, say)
        rec = {"category": c, "status": "fetched", "url": info.url, "bytes": archive.stat().st_size,
               "sha256": digest, "verified": verified, "source": info.source, "placed": placed,
               "fetched": datetime.now().astimezone().isoformat(timespec="seconds")}
        for w in wanted:
            if (data / w).is_dir():
                atomic_write_json(data / w / ".pyramid-fetch.json", rec)
        if not keep_archive:
            archive.unlink()
        say(f"{c}: {', '.join(placed) or 'nothing new'} in {data}")
        out.append(rec)
    return out


def table_text() -> str:
    """The download table as `pyramid-ad fetch mvtec --list` prints it."""
    rows = [f"{'archive':<11} {'size':<34} sha256" + "\n"]
    for name, info in sorted(MVTEC.items()):
        rows.append(f"{name:<11} {size_text(info.size):<34} {info.sha256 or 'not published (UNVERIFIED)'}\n")
    return "".join(rows) + f"URLs: {_SHARE}<id>/<category>.tar.xz (per category: {_PER_CATEGORY})\n" + \
        json.dumps({k: v.url for k, v in MVTEC.items()}, indent=1)
