"""The image-folder loader on the inputs users really have (issue 14, and the field cases modelled on
public bug reports of other kits): every Pillow format, float and 16-bit ranges, EXIF orientation,
nested folders, `Good` vs `good`, masks named or encoded in other ways, OS junk.  Each test builds
a tiny folder (40 x 40 pictures, input size 32 or 40) and checks the values loaded, and that every
file left out is named in the loader's one warning."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from pyramid_lib import data
from pyramid_lib.errors import DataError

S = 40  # picture side on disk
SQ = (slice(10, 20), slice(12, 28))  # the defect square (rows, cols) in a 40 x 40 picture


def save(path: Path, arr_or_im, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    im.save(path, **kw)
    return path


def grey(v=128, h=S, w=S):
    return np.full((h, w), v, np.uint8)


def square_mask(v=255, h=S, w=S):
    m = np.zeros((h, w), np.uint8)
    m[SQ] = v
    return m


def tree(root: Path, n_train=3, defects=("crack",), masks=True) -> Path:
    """A valid MVTec-layout folder of flat grey PNGs: train/good, test/good, test/<defect>, ground_truth."""
    for i in range(n_train):
        save(root / "train" / "good" / f"{i:03d}.png", grey(100 + i))
    save(root / "test" / "good" / "000.png", grey(120))
    for d in defects:
        save(root / "test" / d / "000.png", grey(30))
        if masks:
            save(root / "ground_truth" / d / "000_mask.png", square_mask())
    return root


def load(root: Path, size=32, **kw):
    """(data, the loader's warning text or '' if it gave none); fails if it gave more than one."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        d = data.load_folder(root, size, **kw)
    texts = [str(w.message) for w in rec if issubclass(w.category, UserWarning)]
    assert len(texts) <= 1, texts
    return d, (texts[0] if texts else "")


def loaded(d, name: str):
    """The loaded uint8 3 x S x S tensor of the file called `name` (as numpy H x W x 3)."""
    for split in (d.train, d.test):
        for n, x in zip(split.names, split.images):
            if Path(n).name == name:
                return x.permute(1, 2, 0).numpy()
    raise KeyError(name)


def mask_of(d, name: str) -> np.ndarray:
    i = [Path(n).name for n in d.test.names].index(name)
    return d.test.masks[i].numpy()


def expected_mask(size=32):
    m = Image.fromarray(square_mask()).resize((size, size), Image.NEAREST)
    return (np.asarray(m) > 0).astype(np.uint8)


# ----------------------------------------------------------------------------------- formats

FORMATS = [("webp", {"lossless": True}), ("gif", {}), ("tga", {}), ("ppm", {}), ("qoi", {}), ("tif", {}),
           ("bmp", {}), ("PNG", {}), ("JPG", {"quality": 100}), ("jp2", {}), ("pcx", {}), ("sgi", {}),
           ("dib", {})]


@pytest.mark.parametrize("ext,kw", FORMATS, ids=[f[0] for f in FORMATS])
def test_every_pillow_format_is_loaded_with_its_values(tmp_path, ext, kw):
    if ext == "jp2" and not features.check("jpg_2000"):
        pytest.skip("this Pillow has no JPEG 2000")
    root = tree(tmp_path / "w")
    save(root / "train" / "good" / f"x.{ext}", Image.new("RGB", (S, S), (200, 60, 20)), **kw)
    save(root / "test" / "dent" / f"y.{ext}", Image.new("RGB", (S, S), (10, 240, 90)), **kw)
    d, warned = load(root)
    assert len(d.train) == 4 and "dent" in d.test.classes and f".{ext}" not in warned
    tol = 3 if ext in ("gif", "JPG") else 0  # GIF's palette, JPEG's chroma
    assert np.abs(loaded(d, f"x.{ext}").astype(int) - (200, 60, 20)).max() <= tol
    assert np.abs(loaded(d, f"y.{ext}").astype(int) - (10, 240, 90)).max() <= tol
    assert d.test.labels[d.test.classes.index("dent")] == 1


def test_webp_and_gif_field_case_loses_nothing(tmp_path):
    """Case 25: half of train/good and a whole defect folder as .webp, a test image as .gif."""
    root = tmp_path / "w"
    for i in range(8):
        save(root / "train" / "good" / f"{i:03d}.{'png' if i < 4 else 'webp'}", grey(90 + i))
    save(root / "test" / "good" / "000.gif", grey(120))
    save(root / "test" / "good" / "001.png", grey(120))
    save(root / "test" / "crack" / "000.png", grey(30))
    for i in range(2):
        save(root / "test" / "dent" / f"{i:03d}.webp", grey(40))
    d, warned = load(root)
    assert len(d.train) == 8 and len(d.test) == 5
    assert sorted(set(d.test.classes)) == ["crack", "dent", "good"] and warned == ""


def test_files_pillow_cannot_read_are_named_in_one_warning(tmp_path):
    root = tree(tmp_path / "w")
    (root / "train" / "good" / "notes.txt").write_text("taken on Monday")
    (root / "test" / "crack" / "IMG_1.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))
    (root / "test" / "crack" / "arr.npy").write_bytes(b"\x93NUMPY" + bytes(40))
    d, warned = load(root)
    assert len(d.train) == 3 and len(d.test) == 2
    assert re.search(r"not an image Pillow can read \(3\): train/good/notes.txt, test/crack/IMG_1.heic "
                     r"\(HEIC: pip install pillow-heif.*\), test/crack/arr.npy \(a numpy array.*\)$", warned)


def test_file_without_suffix_is_read_by_content(tmp_path):
    root = tree(tmp_path / "w")
    save(root / "train" / "good" / "frame_0007", grey(77), format="PNG")
    d, warned = load(root)
    assert len(d.train) == 4 and (loaded(d, "frame_0007") == 77).all() and warned == ""


def test_multi_frame_gif_uses_the_first_frame_and_says_so(tmp_path):
    root = tree(tmp_path / "w")
    p = root / "train" / "good" / "anim.gif"
    Image.fromarray(grey(50)).save(p, save_all=True, append_images=[Image.fromarray(grey(220))])
    d, warned = load(root)
    assert np.abs(loaded(d, "anim.gif").astype(int) - 50).max() <= 1
    assert re.search(r"loaded, but 2 frames, the first one used \(1\): train/good/anim.gif", warned)


# ----------------------------------------------------------------------------------- value ranges

@pytest.mark.parametrize("values,want", [(0.5, 128), (0.0, 0), (1.0, 255), (0.2, 51)])
def test_float_tiff_of_one_value_gets_the_nominal_range_and_says_so(tmp_path, values, want):
    """A float kind whose training images hold one value has no range to map: 0..1 becomes 0..255."""
    root = tree(tmp_path / "w")
    save(root / "train" / "good" / "f.tif", np.full((S, S), values, np.float32))
    assert Image.open(root / "train" / "good" / "f.tif").mode == "F"
    d, warned = load(root)
    assert (loaded(d, "f.tif") == want).all()
    assert f"1 float training image(s), values {values:g}..{values:g} (they hold one value): the nominal " \
           "range 0..1 mapped to 0..255" in warned


def test_float_tiff_ramp_keeps_its_grey_levels(tmp_path):
    """Case 09: a float32 TIFF in 0..1 written by numpy: `full` gives back the 8-bit picture it came
    from; `train-range` stretches the training range (0..234/255) to 0..255 and keeps every level."""
    root = tree(tmp_path / "w")
    u8 = np.tile(np.arange(0, 240, 6, dtype=np.uint8), (S, 1))  # 40 levels
    save(root / "train" / "good" / "ramp.tif", u8.astype(np.float32) / 255)
    d, _ = load(root, size=S, intensity="full")
    assert np.array_equal(loaded(d, "ramp.tif")[..., 0], u8)
    d, warned = load(root, size=S)
    x = loaded(d, "ramp.tif")[0, :, 0].astype(int)
    assert x[0] == 0 and x[-1] == 255 and (np.diff(x) > 0).all()
    assert "1 float training image(s), values 0..0.917647: this range (the training images') mapped" in warned


def _float_tree(root: Path) -> Path:
    """Training floats beyond 0..1 (a 0..200 ramp, a -1/1 image) and a 32-bit integer image."""
    root = tree(root)
    save(root / "train" / "good" / "ramp255.tif", np.tile(np.linspace(0, 200, S, dtype=np.float32), (S, 1)))
    signed = np.zeros((S, S), np.float32)
    signed[:, 20:] = 1.0
    signed[:, :20] = -1.0
    save(root / "train" / "good" / "signed.tif", signed)
    save(root / "train" / "good" / "i32.tif", np.tile(np.linspace(0, 1000, S).astype(np.int32), (S, 1)))
    return root


def test_float_ranges_beyond_0_1_map_the_training_range_without_clipping(tmp_path):
    d, warned = load(_float_tree(tmp_path / "w"), size=S)
    ramp, signed = loaded(d, "ramp255.tif")[0, :, 0].astype(int), loaded(d, "signed.tif")[..., 0].astype(int)
    assert ramp[-1] == 255 and abs(ramp[0] - round(1 / 201 * 255)) <= 1 and (np.diff(ramp) >= 0).all()
    assert (signed[:, :20] == 0).all() and (signed[:, 20:] == round(2 / 201 * 255)).all()  # -1..200 mapped
    i32 = loaded(d, "i32.tif")[0, :, 0].astype(int)
    assert i32[0] == 0 and i32[-1] == 255  # integers by their own training range: 0..1000, not 0..65535
    assert "2 float training image(s), values -1..200" in warned and "1 16-bit (or 32-bit integer) training " \
           "image(s), values 0..1000" in warned and "clipped to" not in warned


def test_float_ranges_beyond_0_1_are_clipped_and_named_under_full(tmp_path):
    d, warned = load(_float_tree(tmp_path / "w"), size=S, intensity="full")
    signed = loaded(d, "signed.tif")[..., 0]
    assert (signed[:, :20] == 0).all() and (signed[:, 20:] == 255).all() and (loaded(d, "ramp255.tif")[0, -5:] == 255
                                                                              ).all()
    assert re.search(r"values -1\.\.1 clipped to the nominal range 0\.\.1 \(1\): train/good/signed\.tif", warned)
    assert re.search(r"values 0\.\.200 clipped to the nominal range 0\.\.1 \(1\): train/good/ramp255\.tif", warned)
    assert loaded(d, "i32.tif").max() == round(1000 / 65535 * 255)  # inside 0..65535: dark, not clipped


def test_per_image_stretches_each_float_image_and_clips_nothing(tmp_path):
    d, warned = load(_float_tree(tmp_path / "w"), size=S, intensity="per-image")
    signed = loaded(d, "signed.tif")[..., 0]
    assert (signed[:, :20] == 0).all() and (signed[:, 20:] == 255).all()
    assert "each image's own min..max mapped to 0..255" in warned and "clipped to" not in warned


def test_a_test_image_outside_the_training_range_or_of_a_kind_training_lacks_is_named(tmp_path):
    root = tree(tmp_path / "w")
    for i in range(2):
        save(root / "train" / "good" / f"f{i}.tif", np.full((S, S), 0.40 + 0.05 * i, np.float32))
    save(root / "test" / "good" / "bright.tif", np.full((S, S), 0.5, np.float32))
    save(root / "test" / "good" / "i16.png", np.full((S, S), 32896, np.uint16))  # no integer training image
    d, warned = load(root)
    assert (loaded(d, "bright.tif") == 255).all() and (loaded(d, "i16.png") == 128).all()
    assert re.search(r"values 0\.5\.\.0\.5 clipped to the training range 0\.4\.\.0\.45 \(1\): test/good/bright.tif",
                     warned)
    assert re.search(r"no training image is 16-bit \(or 32-bit integer\): its nominal range "
                     r"0\.\.65535 mapped to 0\.\.255 \(1\): test/good/i16.png", warned)


def test_float_image_with_nan_is_refused_by_name(tmp_path):
    root = tree(tmp_path / "w")
    a = np.full((S, S), 0.5, np.float32)
    a[3, 3] = np.nan
    p = save(root / "train" / "good" / "nan.tif", a)
    with pytest.raises(DataError, match=re.escape(str(p)) + ".*NaN"):
        load(root)


@pytest.mark.parametrize("mode", ["CMYK", "LA", "P", "P+transparency", "I;16", "1", "YCbCr", "LAB", "RGBA"])
def test_every_mode_loads_as_rgb(tmp_path, mode):
    root = tree(tmp_path / "w")
    rgb = Image.new("RGB", (S, S), (180, 90, 30))
    if mode == "I;16":
        im = Image.fromarray(np.full((S, S), 32896, np.uint16))  # 32896 / 65535 * 255 = 128
        want = (128, 128, 128)
    elif mode == "1":
        im, want = Image.new("1", (S, S), 1), (255, 255, 255)
    elif mode == "LA":
        im, want = Image.new("LA", (S, S), (140, 255)), (140, 140, 140)
    elif mode == "P":
        im, want = rgb.quantize(4), (180, 90, 30)
    elif mode == "P+transparency":  # palette index 0 transparent: composited on black
        im, want = Image.fromarray(np.zeros((S, S), np.uint8), "P"), (0, 0, 0)
        im.putpalette([250, 250, 250] * 256)
        im.info["transparency"] = 0
    else:
        im, want = rgb.convert(mode), (180, 90, 30)
    fmt = "TIFF" if mode in ("CMYK", "YCbCr", "LAB", "HSV") else "PNG"
    try:
        save(root / "train" / "good" / "m.img", im, format=fmt)
    except (OSError, ValueError, KeyError):
        pytest.skip(f"this Pillow cannot write {mode} as {fmt}")
    d, _ = load(root)
    assert np.abs(loaded(d, "m.img").astype(int) - want).max() <= 2


def test_cmyk_jpeg_keeps_its_colours(tmp_path):
    """Case 24: CMYK JPEGs next to RGB ones load with the colours of the RGB original."""
    root = tree(tmp_path / "w")
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal(128, 20, (S, S, 3)) + (60, 0, 0), 0, 255).astype(np.uint8)
    save(root / "train" / "good" / "c_cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), quality=95)
    assert Image.open(root / "train" / "good" / "c_cmyk.jpg").mode == "CMYK"
    d, _ = load(root, size=S)
    got = loaded(d, "c_cmyk.jpg").astype(int)
    assert np.abs(got - rgb).mean() < 6 and abs(got[..., 0].mean() - rgb[..., 0].mean()) < 3


def test_grey_colour_and_grey_alpha_mixed(tmp_path):
    """Case 07: grey, RGB and LA images in one class all load as 3 x S x S, grey ones with equal channels."""
    root = tree(tmp_path / "w")
    save(root / "train" / "good" / "rgb.png", Image.new("RGB", (S, S), (10, 20, 30)))
    save(root / "train" / "good" / "la.png", Image.new("LA", (S, S), (90, 255)))
    d, _ = load(root)
    assert d.train.images.shape == (5, 3, 32, 32)
    assert (loaded(d, "la.png") == 90).all() and (loaded(d, "000.png") == 100).all()
    assert loaded(d, "rgb.png")[0, 0].tolist() == [10, 20, 30]


# ----------------------------------------------------------------------------------- EXIF orientation

# what EXIF orientation o asks a viewer to do to the stored pixels (PIL names); stored = inverse(upright)
TO_UPRIGHT = {2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM, 5: Image.TRANSPOSE,
              6: Image.ROTATE_270, 7: Image.TRANSVERSE, 8: Image.ROTATE_90}
INVERSE = {**{o: t for o, t in TO_UPRIGHT.items()}, 6: Image.ROTATE_90, 8: Image.ROTATE_270}


def upright_picture(h=48, w=40):
    a = np.zeros((h, w), np.uint8)
    a[:] = np.arange(w, dtype=np.uint8)[None, :] * 3 + 20  # a left-to-right ramp
    a[4:16, 4:16] = 250  # a bright square top-left, as the user sees it
    return a


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_is_applied_to_images(tmp_path, orientation):
    root = tree(tmp_path / "w")
    up = upright_picture()
    stored = Image.fromarray(up).transpose(INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    save(root / "train" / "good" / "photo.png", stored, exif=exif.tobytes())
    d, _ = load(root, size=40)
    want = np.asarray(Image.fromarray(up).resize((40, 40), Image.BILINEAR))
    assert np.array_equal(loaded(d, "photo.png")[..., 0], want)


def test_exif_rotated_jpeg_and_its_upright_mask_line_up(tmp_path):
    """Case 08: a phone JPEG stored sideways (Orientation 6), its mask drawn on the upright view."""
    root = tree(tmp_path / "w", masks=False)
    up = np.full((S, S + 8), 128, np.uint8)  # 48 wide, 40 high when upright
    up[SQ] = 10
    exif = Image.Exif()
    exif[0x0112] = 6
    save(root / "test" / "crack" / "001.jpg", Image.fromarray(up).transpose(Image.ROTATE_90), quality=95,
         exif=exif.tobytes())
    m = np.zeros_like(up)
    m[SQ] = 255
    save(root / "ground_truth" / "crack" / "001_mask.png", m)
    d, _ = load(root)
    x, mk = loaded(d, "001.jpg")[..., 0].astype(int), mask_of(d, "001.jpg").astype(bool)
    assert mk.sum() > 20 and x[mk].mean() < 30 and x[~mk].mean() > 100  # the mask sits on the dark defect


def test_exif_orientation_is_applied_to_masks(tmp_path):
    root = tree(tmp_path / "w", masks=False)
    exif = Image.Exif()
    exif[0x0112] = 8
    save(root / "ground_truth" / "crack" / "000_mask.png", Image.fromarray(square_mask()).transpose(INVERSE[8]),
         exif=exif.tobytes())
    d, _ = load(root)
    assert np.array_equal(mask_of(d, "000.png"), expected_mask())


# ----------------------------------------------------------------------------------- folders

def test_nested_subfolders_are_searched_and_labelled_by_their_class_folder(tmp_path):
    """Case 14: test/scratch/rgb/*.png and train/good/batch1, batch2."""
    root = tmp_path / "w"
    for i in range(4):
        save(root / "train" / "good" / f"batch{i % 2 + 1}" / f"{i:03d}.png", grey(100 + i))
    save(root / "test" / "good" / "000.png", grey(120))
    save(root / "test" / "crack" / "000.png", grey(30))
    for i in range(2):
        save(root / "test" / "scratch" / "rgb" / f"{i:03d}.png", grey(40))
    save(root / "ground_truth" / "scratch" / "rgb" / "001_mask.png", square_mask())
    d, warned = load(root)
    assert len(d.train) == 4 and all("batch" in n for n in d.train.names)
    assert d.test.classes == ["crack", "good", "scratch", "scratch"] and d.test.labels.tolist() == [1, 0, 1, 1]
    assert [Path(n).relative_to(root).as_posix() for n in d.test.names][2:] == ["test/scratch/rgb/000.png",
                                                                               "test/scratch/rgb/001.png"]
    assert d.test.masks[3].sum() > 0 and d.test.masks[2].sum() == 0
    assert "ground_truth/crack/ missing" in warned and "test/scratch/rgb/000.png" in warned  # 000 has no mask


@pytest.mark.parametrize("names", [("good", "Good"), ("GOOD",), ("Good",)])
def test_good_folder_matches_without_regard_to_case(tmp_path, names):
    """Case 15b: test/Good (next to test/good or alone) holds normal images: label 0, class 'good'."""
    root = tree(tmp_path / "w")
    (root / "test" / "good" / "000.png").unlink()
    (root / "test" / "good").rmdir()
    for k, n in enumerate(names):
        save(root / "test" / n / f"{k}00.png", grey(120))
    d, warned = load(root)
    assert d.test.classes.count("good") == len(names) and d.test.labels.tolist().count(0) == len(names)
    assert set(d.test.classes) == {"crack", "good"}
    assert ("differ only in letter case" in warned) == (len(names) == 2)


def test_train_good_in_other_case_and_defect_folders_differing_in_case(tmp_path):
    root = tmp_path / "w"
    save(root / "train" / "Good" / "000.png", grey(100))
    save(root / "test" / "good" / "000.png", grey(120))
    save(root / "test" / "Crack" / "000.png", grey(30))
    save(root / "test" / "crack" / "001.png", grey(30))
    save(root / "ground_truth" / "CRACK" / "001_mask.png", square_mask())
    d, warned = load(root)
    assert len(d.train) == 1 and d.test.classes == ["Crack", "Crack", "good"]
    assert "test/Crack/ and test/crack/ differ only in letter case: merged as class 'Crack'" in warned
    assert np.array_equal(mask_of(d, "001.png"), expected_mask())


def test_no_normal_test_folder_is_said_with_a_rename_hint(tmp_path):
    """Case 15a and 06: test/OK + test/NG, no test/good: every image anomalous, AUROC undefined, said."""
    root = tree(tmp_path / "w", defects=("NG",), masks=False)
    (root / "test" / "good").rename(root / "test" / "OK")
    d, warned = load(root)
    assert d.test.labels.tolist() == [1, 1]
    assert "no normal test images" in warned and "AUROC is undefined" in warned and "rename it to test/good/" in warned


def test_only_normal_test_images_is_said(tmp_path):
    root = tree(tmp_path / "w", defects=())
    d, warned = load(root)
    assert d.test.labels.tolist() == [0] and "only normal test images" in warned


def test_empty_class_folder_stray_files_and_other_train_folders_are_named(tmp_path):
    root = tree(tmp_path / "w")
    (root / "test" / "dent").mkdir()
    save(root / "test" / "loose.png", grey())
    save(root / "train" / "bad" / "000.png", grey())
    save(root / "train" / "stray.png", grey())
    d, warned = load(root)
    assert len(d.train) == 3 and len(d.test) == 2 and "dent" not in d.test.classes
    for needle in ["test/dent/: no images; class 'dent' is not scored", "test/loose.png", "train/bad",
                   "train/stray.png"]:
        assert needle in warned


def test_os_junk_is_skipped_quietly_and_hidden_files_are_named(tmp_path):
    """Case 13: .DS_Store, Thumbs.db, desktop.ini, ._000.png, .ipynb_checkpoints/ with an image copy."""
    root = tree(tmp_path / "w")
    for d in ["train/good", "test", "test/good", "test/crack", "ground_truth/crack"]:
        (root / d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
        (root / d / "Thumbs.db").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(200))
        (root / d / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (root / "train" / "good" / "._000.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    for d in ["test/.ipynb_checkpoints", "train/good/.ipynb_checkpoints"]:
        save(root / d / "000-checkpoint.png", grey())
    d, warned = load(root)
    assert len(d.train) == 3 and len(d.test) == 2 and sorted(set(d.test.classes)) == ["crack", "good"]
    assert warned == ""  # junk alone: no warning
    save(root / "train" / "good" / ".thumb.png", grey())  # a hidden image is not junk: named
    d, warned = load(root)
    assert len(d.train) == 3 and "hidden file (1): train/good/.thumb.png" in warned
    assert "plus 18 OS/tool leftover files (.DS_Store, ._000.png, .ipynb_checkpoints, Thumbs.db, ...) skipped" in warned


def test_unicode_and_spaces_in_paths(tmp_path):
    """Case 16."""
    root = tree(tmp_path / "my parts 零件 Ü")
    save(root / "train" / "good" / "样品 1 é.png", grey(99))
    save(root / "test" / "划痕 scratch" / "000 ü.png", grey(31))  # not tree()'s crack picture: one picture, one label
    save(root / "ground_truth" / "划痕 scratch" / "000 ü_mask.png", square_mask())
    d, warned = load(root)
    assert (loaded(d, "样品 1 é.png") == 99).all() and "划痕 scratch" in d.test.classes
    assert np.array_equal(mask_of(d, "000 ü.png"), expected_mask()) and warned == ""


def test_nonsquare_mixed_sizes_are_squashed_with_their_masks(tmp_path):
    """Case 11: 40x200, 200x40 and square pictures; masks follow their image."""
    root = tree(tmp_path / "w", masks=False)
    for name, (h, w) in {"wide.png": (40, 200), "tall.png": (200, 40)}.items():
        a = np.full((h, w), 128, np.uint8)
        a[h // 4: h // 2, w // 4: w // 2] = 10
        save(root / "test" / "crack" / name, a)
        save(root / "ground_truth" / "crack" / name.replace(".png", "_mask.png"), (a == 10).astype(np.uint8) * 255)
    d, _ = load(root)
    for name in ("wide.png", "tall.png"):
        x, m = loaded(d, name)[..., 0].astype(int), mask_of(d, name).astype(bool)
        assert m.sum() > 30 and x[m].mean() < 30


def test_tiny_train_set_of_one_image_loads(tmp_path):
    """Case 17 (loader side)."""
    d, _ = load(tree(tmp_path / "w", n_train=1))
    assert len(d.train) == 1


def test_very_large_image_is_read_reduced_and_a_bomb_is_named(tmp_path, monkeypatch):
    """Case 22: a big JPEG is decoded at a reduced scale (same picture); one over Pillow's
    decompression-bomb limit is a DataError naming it and the fix."""
    root = tree(tmp_path / "w")
    big = np.zeros((1200, 1600, 3), np.uint8)
    big[:, :800] = (200, 30, 30)
    big[:, 800:] = (30, 30, 200)
    save(root / "train" / "good" / "cam.jpg", big, quality=90)
    d, _ = load(root)
    x = loaded(d, "cam.jpg").astype(int)
    assert np.abs(x[:, :12] - (200, 30, 30)).max() <= 6 and np.abs(x[:, 20:] - (30, 30, 200)).max() <= 6
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300_000)  # the 1600 x 1200 JPEG is now over 2x the limit
    with pytest.raises(DataError, match=re.escape(str(root / "train/good/cam.jpg")) + ".*decompression-bomb.*"
                                        "MAX_IMAGE_PIXELS"):
        load(root)


# ----------------------------------------------------------------------------------- masks: names

@pytest.mark.parametrize("mask_name", ["000_mask.PNG", "000.png", "000_mask.bmp", "000_mask.jpg", "000_MASK.tif",
                                       "000.webp", "000_mask.gif"])
def test_masks_are_matched_by_stem_any_extension_any_case(tmp_path, mask_name):
    """Cases 01, 02, 03: upper-case extension, same name as the image, BMP/JPEG masks."""
    root = tree(tmp_path / "w", masks=False)
    save(root / "ground_truth" / "crack" / mask_name, square_mask(), **({"quality": 95} if "jpg" in mask_name else {}))
    d, warned = load(root)
    assert np.array_equal(mask_of(d, "000.png"), expected_mask()) and warned == ""


def test_mask_folder_and_image_names_in_other_case(tmp_path):
    root = tree(tmp_path / "w", masks=False)
    (root / "test" / "crack" / "000.png").rename(root / "test" / "crack" / "IMG_0001.PNG")
    save(root / "ground_truth" / "Crack" / "img_0001_mask.png", square_mask())
    d, warned = load(root)
    assert np.array_equal(mask_of(d, "IMG_0001.PNG"), expected_mask()) and warned == ""


def test_unmatched_masks_and_defect_images_without_masks_are_named(tmp_path):
    root = tree(tmp_path / "w")
    save(root / "test" / "crack" / "001.png", grey(30))  # no mask
    save(root / "ground_truth" / "crack" / "007_mask.png", square_mask())  # no image 007
    save(root / "ground_truth" / "dent" / "000_mask.png", square_mask())  # no test/dent
    d, warned = load(root)
    assert mask_of(d, "001.png").sum() == 0 and np.array_equal(mask_of(d, "000.png"), expected_mask())
    assert re.search(r"defect image without a mask .*\(1\): test/crack/001.png", warned)
    assert re.search(r"mask without a test image of that name \(1\): ground_truth/crack/007_mask.png", warned)
    assert "ground_truth/dent" in warned


def test_two_masks_for_one_image_leave_it_out_named(tmp_path):
    """Two masks for one picture, neither spelled more exactly: either could be wrong, so the picture
    and both masks are left out and named (the one rule of the loader and predict, walk.find_mask)."""
    root = tree(tmp_path / "w")
    save(root / "test" / "crack" / "001.png", grey(29))
    save(root / "ground_truth" / "crack" / "001_mask.png", square_mask())
    save(root / "ground_truth" / "crack" / "000.png", square_mask())
    d, warned = load(root)
    assert not any(n.endswith("000.png") and "crack" in n for n in d.test.names)
    assert re.search(r"several masks match it.*ground_truth/crack/000.png, ground_truth/crack/000_mask.png.*"
                     r"test/crack/000.png", warned)
    assert ("mask without a test image of that name (2): ground_truth/crack/000.png, ground_truth/crack/000_mask.png"
            in warned)


def test_mask_of_other_size_same_aspect_is_scaled_other_aspect_is_refused(tmp_path):
    root = tree(tmp_path / "w", masks=False)
    half = np.asarray(Image.fromarray(square_mask()).resize((20, 20), Image.NEAREST))
    save(root / "ground_truth" / "crack" / "000_mask.png", half)
    d, warned = load(root)
    assert mask_of(d, "000.png").sum() > 0 and "ground_truth/crack/000_mask.png (20x20 scaled to 40x40)" in warned
    save(root / "ground_truth" / "crack" / "000_mask.png", np.zeros((40, 60), np.uint8))
    with pytest.raises(DataError, match=r"000_mask.png: mask is 60x40 but its image .*000.png is 40x40"):
        load(root)


# ----------------------------------------------------------------------------------- masks: values

def _mask_file(kind: str) -> Image.Image:
    m = square_mask(1).astype(bool)
    if kind == "0/1":
        return Image.fromarray(m.astype(np.uint8))
    if kind == "0/120":
        return Image.fromarray(m.astype(np.uint8) * 120)
    if kind == "loco 236..255":
        return Image.fromarray(np.where(m, np.random.default_rng(0).integers(236, 256, m.shape), 0).astype(np.uint8))
    if kind in ("palette voc", "palette black index 1"):
        p = Image.fromarray(m.astype(np.uint8), mode="P")
        colour = [128, 0, 0] if kind == "palette voc" else [0, 0, 0]  # index 1 in dark red, or even in black
        p.putpalette([0, 0, 0, *colour] + [255, 255, 255] * 254)
        return p
    if kind == "bilevel":
        return Image.fromarray(m).convert("1")
    if kind == "red on black":
        a = np.zeros((S, S, 3), np.uint8)
        a[m] = (255, 0, 0)
        return Image.fromarray(a)
    if kind == "rgba overlay":
        a = np.zeros((S, S, 4), np.uint8)
        a[~m] = (255, 255, 255, 0)  # transparent white background
        a[m] = (255, 0, 0, 128)
        return Image.fromarray(a, "RGBA")
    if kind == "16-bit":
        return Image.fromarray(m.astype(np.uint16) * 3)
    if kind == "float":
        return Image.fromarray(m.astype(np.float32) * 0.25)
    raise AssertionError(kind)


MASK_KINDS = ["0/1", "0/120", "loco 236..255", "palette voc", "palette black index 1", "bilevel", "red on black",
              "rgba overlay", "16-bit", "float"]


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_every_mask_encoding_marks_exactly_the_defect(tmp_path, kind):
    """Cases 04, 05: 0/1 label images, soft masks peaking at 120, LOCO's 236..255, labelme palette masks
    (defect = index 1, whatever its colour), bilevel, coloured, RGBA overlays, 16-bit and float masks."""
    root = tree(tmp_path / "w", masks=False)
    save(root / "ground_truth" / "crack" / ("000_mask.tif" if kind == "float" else "000_mask.png"), _mask_file(kind))
    d, _ = load(root, size=S)
    assert np.array_equal(mask_of(d, "000.png"), square_mask(1))


def test_palette_training_image_loads_in_colour(tmp_path):
    """Case 05: a quantised ('P') training image loads as its RGB colours, not as indexes."""
    root = tree(tmp_path / "w")
    rgb = np.zeros((S, S, 3), np.uint8)
    rgb[:, :20] = (200, 40, 40)
    rgb[:, 20:] = (40, 200, 40)
    save(root / "train" / "good" / "pal.png", Image.fromarray(rgb).quantize(8))
    d, _ = load(root, size=S)
    assert np.abs(loaded(d, "pal.png").astype(int) - rgb).max() <= 2


def test_jpeg_mask_noise_is_not_a_defect(tmp_path):
    root = tree(tmp_path / "w", masks=False)
    save(root / "ground_truth" / "crack" / "000_mask.jpg", square_mask(), quality=60)
    d, _ = load(root, size=S)
    assert np.array_equal(mask_of(d, "000.png"), square_mask(1))


# ----------------------------------------------------------------------------------- the whole accounting

def test_every_file_is_loaded_or_named(tmp_path):
    """Under train/, test/, ground_truth/: each file is a loaded image, a used mask, named in the
    warning, or OS junk (counted)."""
    root = tree(tmp_path / "w")
    save(root / "train" / "good" / "a.webp", grey(), lossless=True)
    (root / "train" / "good" / "b.txt").write_text("x")
    save(root / "train" / "good" / ".c.png", grey())
    save(root / "test" / "crack" / "deep" / "d.png", grey())
    save(root / "test" / ".e" / "e.png", grey())
    save(root / "ground_truth" / "crack" / "zz_mask.png", square_mask())
    (root / "test" / "good" / ".DS_Store").write_bytes(bytes(8))
    d, warned = load(root)
    used = {Path(n) for n in d.train.names + d.test.names} | {root / "ground_truth" / "crack" / "000_mask.png"}
    for p in root.rglob("*"):
        if p.is_file() and p not in used and p.name != ".DS_Store":
            rel = p.relative_to(root).as_posix()
            assert rel in warned or Path(rel).parent.as_posix() in warned, rel  # the file, or its hidden folder
    assert "plus 1 OS/tool leftover files (.DS_Store)" in warned


def test_folder_link_loop_is_named_not_followed_forever(tmp_path):
    root = tree(tmp_path / "w")
    (root / "test" / "crack" / "again").symlink_to(root / "test" / "crack", target_is_directory=True)
    d, warned = load(root)
    assert d.test.classes.count("crack") == 1
    assert "link to a folder above it: a loop, not followed (1): test/crack/again" in warned


def test_suffixless_file_that_does_not_decode_is_named_not_fatal(tmp_path):
    root = tree(tmp_path / "w")
    raw = (root / "train" / "good" / "000.png").read_bytes()
    (root / "train" / "good" / "README").write_bytes(raw[: len(raw) // 2])  # a PNG header, then nothing
    d, warned = load(root)
    assert len(d.train) == 3 and "not an image Pillow can read (1): train/good/README" in warned


def test_no_training_image_names_what_was_found(tmp_path):
    root = tree(tmp_path / "w", n_train=0)
    (root / "train" / "good").mkdir(parents=True)
    (root / "train" / "good" / "list.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"train/good: no images \(found only: train/good/list.csv \(not an image "
                                        r"Pillow can read\)\); the normal class must have training images"):
        load(root)
