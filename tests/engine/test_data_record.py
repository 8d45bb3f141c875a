"""data.json: a run remembers which images it trained on and held out (by name and pixel hash);
evaluation scores the recorded held-out normals and says what changed in the data since
training; resuming on changed training data is refused (issue 14, part 2; field case 19)."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

import folder_helpers
import pandas as pd
import pytest
import torch
from folder_helpers import folder_cfg, load_folder, save_png, texture
from helpers import tiny_cfg
from PIL import Image

from pyramid_lib import cli, data
from pyramid_lib.data.splits import fit_and_heldout
from pyramid_lib.engine import data_record
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import DataChangedWarning, DataError

folder_run, copies = folder_helpers.folder_run, folder_helpers.copies  # fixtures


def held_scored(run) -> list[str]:
    """Names of the held-out normals in scores.csv, relative to their data folder."""
    names = pd.read_csv(run.scores).query("split != 'test'").name
    return [Path(n).relative_to(Path(n).parents[2]).as_posix() for n in names]


def no_data_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DataChangedWarning)]


@pytest.mark.slow
def test_train_records_fit_and_held_out_images_by_relative_name_and_hash(folder_run):
    root, run = folder_run
    rec = json.loads(run.data_record.read_text())
    d = load_folder(root)
    fit, held = fit_and_heldout(d, folder_cfg(root))
    rel = lambda names: [Path(n).relative_to(root).as_posix() for n in names]  # noqa: E731
    assert list(rec["held_out"]) == rel(held.names) and len(held) == 2
    assert rec["held_out"] == dict(zip(rel(held.names), data_record.image_hashes(held)))
    assert rec["fit"]["count"] == len(fit) == 10 and not set(rel(fit.names)) & set(rec["held_out"])
    assert sorted(rec["train"]["images"]) == [f"train/good/{i:03d}.png" for i in range(12)]
    assert len(rec["test"]["images"]) == 4 and rec["folder"] == str(root.resolve())
    assert rec["data_root"] == str(root) and rec["dataset"] == "folder" and rec["input_size"] == 32


def test_added_training_images_leave_the_recorded_held_out_normals_and_are_named(copies):
    """Field case 19 (c): 2 normals added to train/good after training.  A recomputed split would
    now hold out images the network trained on; evaluate scores the recorded ones and says so."""
    root, run = copies
    recorded = list(json.loads(run.data_record.read_text())["held_out"])
    fit_then, _ = fit_and_heldout(load_folder(root), folder_cfg(root))
    for i in (12, 13):
        save_png(texture(i), root / "train" / "good" / f"{i:03d}.png")
    _, held_now = fit_and_heldout(load_folder(root), folder_cfg(root))
    assert set(held_now.names) & set(fit_then.names)  # what the old code scored as "held-out normals"
    with pytest.warns(DataChangedWarning, match=r"train: 2 added \(train/good/012\.png, train/good/013\.png\)") as w:
        assert cli.main(["evaluate", str(run.dir), "--data-root", str(root), "--device", "cpu"]) == 0
    assert "The threshold uses the 2 held-out normals recorded" in no_data_warnings(w)[0]
    assert held_scored(run) == recorded
    fit_names = {Path(n).relative_to(root).as_posix() for n in fit_then.names}
    assert not fit_names & set(held_scored(run))


def test_a_changed_or_missing_held_out_normal_stops_evaluation_naming_it(copies):
    root, run = copies
    first, second = json.loads(run.data_record.read_text())["held_out"]
    img = root / first
    save_png(255 - texture(0), img)  # other pixels under the same name
    with pytest.raises(DataError, match=rf"{root}.*1 changed \({first}\).*cannot be reproduced.*--data-root"):
        evaluate_run(run, data=load_folder(root), progress=False)
    (root / second).unlink()
    with pytest.raises(DataError, match=rf"1 missing \({second}\) and 1 changed \({first}\)"):
        evaluate_run(run, data=load_folder(root), progress=False)
    assert not run.evaluated  # nothing half-done was written


def test_a_removed_test_image_is_named_and_a_resaved_file_is_no_change(copies):
    root, run = copies
    (root / "test" / "good" / "001.png").unlink()
    with Image.open(root / "test" / "crack" / "000.png") as im:  # same pixels, other bytes
        im.load()
        im.save(root / "test" / "crack" / "000.png", compress_level=0)
    with pytest.warns(DataChangedWarning) as w:
        row = evaluate_run(run, data=load_folder(root), progress=False).iloc[0]
    msgs = no_data_warnings(w)
    assert len(msgs) == 1 and "test: 1 removed (test/good/001.png)" in msgs[0]
    assert "crack" not in msgs[0] and "train:" not in msgs[0]
    assert row.n_test == 3


def test_unchanged_data_evaluates_without_a_warning_from_another_folder(copies):
    """Moved data (field case 19 b): names are relative to the data folder, so a copy matches."""
    root, run = copies
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        evaluate_run(run, data=load_folder(root), progress=False)
    assert no_data_warnings(w) == []
    assert held_scored(run) == list(json.loads(run.data_record.read_text())["held_out"])


def test_a_run_without_a_record_is_evaluated_with_a_recomputed_split_and_one_warning(copies):
    root, run = copies
    run.data_record.unlink()
    with pytest.warns(DataChangedWarning, match="no data.json.*recomputed") as w:
        evaluate_run(run, data=load_folder(root), progress=False)
    assert len(no_data_warnings(w)) == 1
    _, held = fit_and_heldout(load_folder(root), folder_cfg(root))
    assert held_scored(run) == [Path(n).relative_to(root).as_posix() for n in held.names]


@pytest.mark.slow
def test_resume_refuses_changed_training_images_and_accepts_unchanged_ones(tmp_path, folder_run):
    root = tmp_path / "data"
    shutil.copytree(folder_run[0], root)
    cfg = folder_cfg(root, epochs=2)
    cut = train(cfg, tmp_path / "run", progress=False, stop_after_batches=4)  # epoch 1 saved, then killed
    before = cut.data_record.read_bytes()
    save_png(texture(50), root / "train" / "good" / "012.png")
    with pytest.raises(DataError, match=r"--resume: the training images in .* changed .*train: 1 added "
                                        r"\(train/good/012\.png\).*another --out"):
        train(cfg, cut.dir, resume=True, progress=False)
    assert cut.data_record.read_bytes() == before and not cut.trained
    (root / "train" / "good" / "012.png").unlink()
    assert train(cfg, cut.dir, resume=True, progress=False).trained


@pytest.mark.slow
def test_builtin_datasets_keep_a_digest_per_split_and_every_held_out_normal(tmp_path, tiny):
    run = train(tiny_cfg(epochs=1), tmp_path / "r", data=tiny, progress=False)
    rec = json.loads(run.data_record.read_text())
    assert "images" not in rec["train"] and "images" not in rec["test"] and rec["folder"] is None
    assert list(rec["held_out"]) == fit_and_heldout(tiny, tiny_cfg())[1].names
    assert rec["test"]["count"] == len(tiny.test) and rec["train"]["count"] == len(tiny.train)
    other = data.OneClassData(tiny.dataset, tiny.normal_class, tiny.train,
                              tiny.test.subset(torch.arange(1, len(tiny.test))), 28, tiny.class_names)
    with pytest.warns(DataChangedWarning, match=r"test: not the images recorded \(12 then, 11 now"):
        evaluate_run(run, data=other, progress=False)


def test_hashing_a_whole_mnist_sized_split_is_fast():
    images = data.ImageSet(torch.randint(0, 256, (60_000, 1, 28, 28), dtype=torch.uint8),
                           torch.zeros(60_000, dtype=torch.long), ["0"] * 60_000,
                           [f"train[{i}]" for i in range(60_000)])
    t0 = time.perf_counter()
    entries = data_record.entries(images, None)
    assert time.perf_counter() - t0 < 5 and len(set(entries.values())) == 60_000
