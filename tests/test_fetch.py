"""`pyramid-ad fetch mvtec` offline: a small MVTec-layout archive served from a temporary folder by a
localhost HTTP server (with Range requests, so a cut download resumes), and as a file:// URL."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyramid_lib import cli
from pyramid_lib.data import load
from pyramid_lib.errors import DataError
from pyramid_lib.lab.fetch import MVTEC, fetch_mvtec
from pyramid_lib.paper import MVTEC_CATEGORIES


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_archive(path: Path, extra: tarfile.TarInfo | None = None) -> str:
    """A bottle.tar.xz in MVTec's layout (6 training normals, 2 + 2 test images, 2 masks); returns its SHA-256."""
    files = {**{f"bottle/train/good/{i:03d}.png": _png(i) for i in range(6)},
             **{f"bottle/test/good/{i:03d}.png": _png(10 + i) for i in range(2)},
             **{f"bottle/test/broken/{i:03d}.png": _png(20 + i) for i in range(2)}}
    mask = io.BytesIO()
    Image.fromarray(np.pad(np.full((32, 32), 255, np.uint8), 48)).save(mask, "PNG")
    files.update({f"bottle/ground_truth/broken/{i:03d}_mask.png": mask.getvalue() for i in range(2)})
    with tarfile.open(path, "w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x" * extra.size) if extra.isfile() else None)
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, honouring `Range: bytes=N-` (206) as real download servers do; counts requests."""

    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        start = int(rng.split("=")[1].rstrip("-"))
        body = path.read_bytes()[start:]
        type(self).ranges.append(start)
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{path.stat().st_size}")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    RangeHandler.ranges = []
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_the_table_names_every_category_and_the_whole_archive_with_its_published_checksum():
    assert set(MVTEC) == {*MVTEC_CATEGORIES, "all"}
    assert all(i.url.startswith("https://www.mydrive.ch/shares/") and i.url.endswith(f"/{i.filename}")
               for i in MVTEC.values())
    assert MVTEC["all"].size == 5_264_982_680 and len(MVTEC["all"].sha256) == 64
    assert MVTEC["bottle"].filename == "bottle.tar.xz"


def test_fetch_downloads_checks_and_extracts_a_category_the_loader_then_reads(server, tmp_path, capsys):
    served, base = server
    digest = make_archive(served / "bottle.tar.xz")
    root = tmp_path / "data"
    assert cli.main(["fetch", "mvtec", "--category", "bottle", "--data-root", str(root), "--url",
                     f"{base}/bottle.tar.xz", "--sha256", digest]) == 0
    out = capsys.readouterr().out
    assert f"SHA-256 {digest} matches the expected one" in out
    rec = json.loads((root / "mvtec_ad" / "bottle" / ".pyramid-fetch.json").read_text())
    assert rec["verified"] and rec["sha256"] == digest and rec["bytes"] == (served / "bottle.tar.xz").stat().st_size
    assert not (root / "mvtec_ad" / ".downloads" / "bottle.tar.xz").exists()  # removed once extracted
    assert not list((root / "mvtec_ad").glob(".extract-*"))
    d = load("mvtec", "bottle", root)
    assert (len(d.train), len(d.test), int(d.test.labels.sum())) == (6, 4, 2)
    assert fetch_mvtec(["bottle"], root, say=lambda _: None)[0]["status"] == "present"  # there: nothing fetched


def test_a_wrong_checksum_leaves_nothing_behind(server, tmp_path):
    served, base = server
    make_archive(served / "bottle.tar.xz")
    root = tmp_path / "data"
    with pytest.raises(DataError, match="differs from the expected"):
        fetch_mvtec(["bottle"], root, url=f"{base}/bottle.tar.xz", sha256="0" * 64, say=lambda _: None,
                    progress=False)
    assert not (root / "mvtec_ad" / "bottle").exists()
    assert not [p for p in (root / "mvtec_ad" / ".downloads").iterdir()]


def test_a_cut_download_resumes_with_a_range_request(server, tmp_path):
    served, base = server
    digest = make_archive(served / "bottle.tar.xz")
    blob = (served / "bottle.tar.xz").read_bytes()
    downloads = tmp_path / "data" / "mvtec_ad" / ".downloads"
    downloads.mkdir(parents=True)
    (downloads / "bottle.tar.xz.part").write_bytes(blob[: len(blob) // 2])  # a connection dropped halfway
    fetch_mvtec(["bottle"], tmp_path / "data", url=f"{base}/bottle.tar.xz", sha256=digest, say=lambda _: None,
                progress=False)
    assert RangeHandler.ranges == [len(blob) // 2]
    assert (tmp_path / "data" / "mvtec_ad" / "bottle" / "train" / "good" / "000.png").is_file()


@pytest.mark.parametrize("member", ["../escaped.txt", "/abs/escaped.txt", "bottle/link"])
def test_an_archive_that_would_write_outside_its_folder_is_refused(tmp_path, member):
    info = tarfile.TarInfo(member)
    if member.endswith("link"):
        info.type, info.linkname = tarfile.SYMTYPE, "../../escaped.txt"
    else:
        info.size = 1
    archive = tmp_path / "served" / "bottle.tar.xz"
    archive.parent.mkdir()
    digest = make_archive(archive, info)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="refused"):
        fetch_mvtec(["bottle"], root, url=archive.as_uri(), sha256=digest, say=lambda _: None, progress=False)
    assert not (root / "mvtec_ad" / "bottle").exists() and not list(tmp_path.rglob("escaped.txt"))


def test_an_unpublished_checksum_is_said_unverified_and_recorded(tmp_path):
    archive = tmp_path / "bottle.tar.xz"
    digest = make_archive(archive)
    said = []
    rec = fetch_mvtec(["bottle"], tmp_path / "data", url=archive.as_uri(), say=said.append, progress=False)[0]
    assert not rec["verified"] and rec["sha256"] == digest
    assert any("UNVERIFIED" in s for s in said)
    with pytest.raises(DataError, match="unknown MVTec AD category bottel"):
        fetch_mvtec(["bottel"], tmp_path / "data")
    with pytest.raises(DataError, match="exactly one --category"):
        fetch_mvtec(["bottle", "pill"], tmp_path / "data", url=archive.as_uri())
