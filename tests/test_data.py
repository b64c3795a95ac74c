"""Tests for inpainting.data.imageio and inpainting.data.datasets: file formats, flists, crops, resumable order."""
import math
import warnings

import numpy as np
import pytest
from PIL import Image

from inpainting.data.datasets import (BatchSampler, ImageDataset, ImageFolder, demo_corpus, list_images,
                             procedural_texture, random_crop_transform)
from inpainting.data.imageio import (ImageReadError, as_rgb_uint8, from_uint8, load_image, load_mask,
                                read_rgb_uint8, save_image, to_uint8)


def _write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def _pixels(rng, h, w, c=3):
    return rng.integers(0, 256, size=(h, w, c) if c else (h, w), dtype=np.uint8)


# ----------------------------------------------------------------------------- imageio

def test_uint8_conversions_follow_the_release():
    u = np.arange(256, dtype=np.uint8)
    y = from_uint8(u)
    assert y.dtype == np.float32 and y[0] == -1.0 and y[255] == 1.0
    np.testing.assert_allclose(y, u / 127.5 - 1, atol=1e-6)
    # saturate + truncate: (0 + 1) * 127.5 = 127.5 -> 127; out of range saturates
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, -1.0, 0.0, 0.999, 1.0, 2.0])),
                                  [0, 0, 127, 254, 255, 255])
    truncated = to_uint8(y)
    assert np.array_equal(truncated[64:], u[64:]) and np.array_equal(truncated[1:64], u[1:64] - 1)
    np.testing.assert_array_equal(to_uint8(y, rounding="nearest"), u)
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.array([np.nan]))
    with pytest.raises(TypeError):
        to_uint8(u)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA", "1", "I;16"])
def test_load_image_converts_modes_to_rgb(tmp_path, mode):
    rgb = _pixels(np.random.default_rng(0), 5, 7)
    if mode == "I;16":  # 16-bit gray: scaled by 1/257 to 8 bits
        image = Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257)
        expected = np.repeat(rgb[:, :, :1], 3, axis=2)
    else:
        image = Image.fromarray(rgb).convert(mode)
        expected = np.asarray(image.convert("RGB"))  # gray replicated, alpha dropped
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    image.save(path)
    out = load_image(path)
    assert out.shape == (3, 5, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(to_uint8(out, "nearest").transpose(1, 2, 0), expected)


def test_load_image_errors_name_the_path(tmp_path):
    with pytest.raises(ImageReadError, match="missing.png.*no such file"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="bad.png") as info:
        load_image(bad)
    assert isinstance(info.value, ValueError)
    truncated = tmp_path / "cut.png"
    _write(truncated, _pixels(np.random.default_rng(1), 32, 32))
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_image(truncated)


def test_save_image_into_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere does not exist") as info:
        save_image(tmp_path / "nowhere" / "out.png", np.zeros((3, 4, 4), np.float32))
    assert ".tmp" not in str(info.value)


def test_save_image_round_trip_and_atomic(tmp_path):
    rng = np.random.default_rng(2)
    rgb = _pixels(rng, 6, 9)
    path = tmp_path / "out.png"
    save_image(path, from_uint8(rgb).transpose(2, 0, 1), rounding="nearest")
    np.testing.assert_array_equal(read_rgb_uint8(path), rgb)
    save_image(path, np.full((3, 6, 9), 5.0))  # overwrite; saturates to white
    assert (read_rgb_uint8(path) == 255).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left
    with pytest.raises(ValueError, match="extension"):
        save_image(tmp_path / "out.xyz", np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        save_image(path, np.zeros((4, 4)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    """The write goes to a temporary file renamed into place: an encoder that fails half-way
    leaves the old picture whole and removes the partial file."""
    from PIL import Image

    path = tmp_path / "out.png"
    save_image(path, np.zeros((3, 4, 4), np.float32))
    before = path.read_bytes()

    def failing_save(self, stream, *args, **kwargs):
        stream.write(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(path, np.ones((3, 4, 4), np.float32))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_load_mask_threshold_and_size(tmp_path):
    gray = np.array([[0, 127, 128], [255, 200, 1]], np.uint8)
    expected = (gray > 127.5).astype(np.float32)[None]
    np.testing.assert_array_equal(load_mask(_write(tmp_path / "m.png", gray)), expected)
    rgb = np.stack([gray, 255 - gray, 255 - gray], axis=2)  # only channel 0 counts
    np.testing.assert_array_equal(load_mask(_write(tmp_path / "c.png", rgb)), expected)
    rgba = np.dstack([rgb, np.zeros_like(gray)])
    np.testing.assert_array_equal(load_mask(_write(tmp_path / "a.png", rgba), size=(2, 3)), expected)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 4\)"):
        load_mask(tmp_path / "m.png", size=(4, 4))


# ----------------------------------------------------------------------------- sources

def test_folder_listing_is_recursive_sorted_and_filtered(tmp_path):
    rng = np.random.default_rng(3)
    for name in ["b.png", "a.JPG", "sub/c.bmp", "sub/deeper/d.png"]:
        _write(tmp_path / name, _pixels(rng, 8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.JPG", "b.png", "sub/c.bmp", "sub/deeper/d.png"]


def test_flist_comments_blank_lines_and_relative_paths(tmp_path):
    rng = np.random.default_rng(4)
    _write(tmp_path / "imgs" / "one.png", _pixels(rng, 8, 8))
    absolute = _write(tmp_path / "elsewhere" / "two.png", _pixels(rng, 8, 8))
    flist = tmp_path / "lists" / "train.flist"
    flist.parent.mkdir()
    flist.write_text(f"# training images\n\n../imgs/one.png\n   \n{absolute}\n")
    paths = list_images(flist)
    assert [p.resolve() for p in paths] == [(tmp_path / "imgs/one.png").resolve(), absolute.resolve()]
    assert ImageFolder(flist, 8).next_batch(2).shape == (2, 3, 8, 8)


def test_empty_or_missing_source_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        ImageFolder(tmp_path / "empty")
    (tmp_path / "empty.flist").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="no images found"):
        ImageFolder(tmp_path / "empty.flist")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolder(tmp_path / "nowhere")


def test_bad_file_is_warned_once_and_skipped(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(3):
        _write(tmp_path / f"good{i}.png", _pixels(rng, 10, 10))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    data = ImageFolder(tmp_path, 8, seed=1)
    with pytest.warns(RuntimeWarning, match="broken.png") as record:
        batch = data.next_batch(12)  # four epochs over 4 files, one bad
    assert batch.shape == (12, 3, 8, 8) and len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.next_batch(3)  # known bad: skipped silently
    (tmp_path / "good0.png").unlink()
    (tmp_path / "good1.png").unlink()
    (tmp_path / "good2.png").write_bytes(b"")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="none of the 4 images"):
        data.next_batch(1)


def test_fixed_samples_skip_unreadable_files_and_do_not_move_the_sampler(tmp_path):
    """The figures' fixed images: the first readable ones (epoch 0 crops), cycled when too
    few; a bad file is warned about once (shared with next_batch) and skipped."""
    rng = np.random.default_rng(14)
    _write(tmp_path / "a.png", _pixels(rng, 12, 12))
    _write(tmp_path / "c.png", _pixels(rng, 12, 12))
    truncated = _write(tmp_path / "b.png", _pixels(rng, 40, 40))
    truncated.write_bytes(truncated.read_bytes()[:60])
    data = ImageFolder(tmp_path, 8, seed=3)
    with pytest.warns(RuntimeWarning, match="b.png.*truncated") as record:
        picks = data.fixed_samples(4)
    assert len(record) == 1 and picks.shape == (4, 3, 8, 8)
    a, c = data.sample(0, 0), data.sample(2, 0)
    for got, want in zip(picks, (a, c, a, c)):
        np.testing.assert_array_equal(got, want)
    assert data.state_dict()["position"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.next_batch(3)          # already known bad: skipped silently


@pytest.mark.parametrize("name, content, what", [
    ("img.png", None, "is an image file"),
    ("photo.jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "is an image file"),
    ("noext", b"\x89PNG\r\n\x1a\n\x00\x00", "is an image file"),
    ("weights.npz", b"PK\x03\x04\x00\x00", "is a binary file"),
    ("latin1.txt", "caf\xe9.png\n".encode("latin-1"), "is a file that is not UTF-8 text "
                                                        "\\(byte 0xe9 at offset 3\\)"),
])
def test_an_image_or_binary_file_is_not_an_flist(tmp_path, name, content, what):
    path = tmp_path / name
    if content is None:
        _write(path, _pixels(np.random.default_rng(15), 8, 8))
    else:
        path.write_bytes(content)
    expected = f"{what}, not a folder or an flist \\(a text file of image paths"
    with pytest.raises(ValueError, match=f"{name} {expected}"):
        list_images(path)
    with pytest.raises(ValueError, match=f"{name} {expected}"):
        ImageFolder(path, 8)


def test_an_flist_with_non_ascii_paths_still_reads(tmp_path):
    rng = np.random.default_rng(16)
    _write(tmp_path / "café.png", _pixels(rng, 8, 8))
    flist = tmp_path / "train.flist"
    flist.write_text("# ünïcode\ncafé.png\n", encoding="utf-8")
    assert list_images(flist) == [tmp_path / "café.png"]


# ----------------------------------------------------------------------------- transform

def test_crop_upscales_small_images_keeping_aspect():
    rng = np.random.default_rng(6)
    pixels = _pixels(rng, 10, 40)
    out = random_crop_transform(pixels, 20, np.random.default_rng(0))
    assert out.shape == (3, 20, 20)
    # scale = max(20/10, 20/40) = 2 -> 20 x 80; the crop is one of its 61 windows
    big = np.asarray(Image.fromarray(pixels).resize((80, 20), Image.BILINEAR))
    windows = [to_uint8(from_uint8(big[:, left:left + 20]).transpose(2, 0, 1)) for left in range(61)]
    assert any(np.array_equal(to_uint8(out), w) for w in windows)


def test_crop_without_upscale_is_an_exact_window_and_covers_all_corners():
    pixels = _pixels(np.random.default_rng(7), 6, 5)
    seen = set()
    for seed in range(200):
        out = to_uint8(random_crop_transform(pixels, 4, np.random.default_rng(seed)), "nearest")
        corners = [(t, l) for t in range(3) for l in range(2)
                   if np.array_equal(out.transpose(1, 2, 0), pixels[t:t + 4, l:l + 4])]
        assert corners
        seen.update(corners)
    assert seen == {(t, l) for t in range(3) for l in range(2)}  # inclusive upper bound


def test_resize_and_flip_options():
    pixels = _pixels(np.random.default_rng(8), 12, 30)
    out = random_crop_transform(pixels, 8, np.random.default_rng(0), resize=True)
    expected = np.asarray(Image.fromarray(pixels).resize((8, 8), Image.BILINEAR))
    np.testing.assert_array_equal(to_uint8(out, "nearest").transpose(1, 2, 0), expected)
    square = _pixels(np.random.default_rng(9), 8, 8)
    flips = {to_uint8(random_crop_transform(square, 8, np.random.default_rng(s), random_flip=True),
                      "nearest").tobytes() for s in range(20)}
    assert flips == {square.transpose(2, 0, 1).tobytes(),
                     square[:, ::-1].transpose(2, 0, 1).tobytes()}


def _crop_windows(out, pixels, sides):
    """Every (side, top, left) whose square window of ``pixels`` resized to ``out``'s size
    (Pillow bilinear) equals ``out`` (H, W, 3) uint8: the exhaustive search of the crop tests."""
    size, (height, width) = out.shape[0], pixels.shape[:2]
    return [(side, top, left) for side in sides for top in range(height - side + 1)
            for left in range(width - side + 1)
            if np.array_equal(out, np.asarray(Image.fromarray(
                pixels[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)))]


def _scaled_crop(pixels, size, seed, scale):
    """random_crop_transform with min_crop_scale, back as (S, S, 3) uint8 (exact round trip)."""
    return to_uint8(random_crop_transform(pixels, size, np.random.default_rng(seed),
                                          min_crop_scale=scale), "nearest").transpose(1, 2, 0)


def test_min_crop_scale_is_a_resized_square_of_the_drawn_side():
    """Each output = Pillow's bilinear resize of a square window whose side is round(f * 24), f in
    [0.5, 1], found by searching every side and corner; the draws cover both ends of the range."""
    pixels = _pixels(np.random.default_rng(12), 24, 30)
    sides = set()
    for seed in range(40):
        matches = _crop_windows(_scaled_crop(pixels, 8, seed, 0.5), pixels, range(12, 25))
        assert matches, seed
        sides.update(side for side, _, _ in matches)
    assert min(sides) <= 14 and max(sides) >= 22 and sides <= set(range(12, 25))


def test_min_crop_scale_one_sees_the_whole_shorter_side():
    square = _pixels(np.random.default_rng(13), 20, 20)
    out = random_crop_transform(square, 10, np.random.default_rng(0), min_crop_scale=1.0)
    expected = np.asarray(Image.fromarray(square).resize((10, 10), Image.BILINEAR))
    np.testing.assert_array_equal(to_uint8(out, "nearest").transpose(1, 2, 0), expected)


def test_min_crop_scale_reaches_the_datasets_and_the_configuration(tmp_path):
    from inpainting.training.config import load_config
    from inpainting.training.train import make_dataset

    source = _folder(tmp_path)
    first = ImageFolder(source, 8, min_crop_scale=0.5, seed=2)
    second = ImageFolder(source, 8, min_crop_scale=0.5, seed=2)
    plain = ImageFolder(source, 8, seed=2)
    batch = first.next_batch(5)
    np.testing.assert_array_equal(batch, second.next_batch(5))
    assert not np.array_equal(batch, plain.next_batch(5))
    config = load_config(data=str(source), image_size=16, bbox_size=16, max_delta=4,
                         min_crop_scale=0.5)
    assert make_dataset(config).min_crop_scale == 0.5
    assert demo_corpus("heldout", 16, min_crop_scale=0.3).min_crop_scale == 0.3


@pytest.mark.parametrize("options, message", [
    (dict(min_crop_scale=1.5), "min_crop_scale must be 0 \\(off\\) or in \\(0, 1\\], got 1.5"),
    (dict(min_crop_scale=-0.1), "got -0.1"),
    (dict(min_crop_scale=0.5, resize=True), "use one of them"),
])
def test_bad_crop_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        random_crop_transform(_pixels(np.random.default_rng(0), 8, 8), 4,
                              np.random.default_rng(0), **options)
    with pytest.raises(ValueError, match=message):
        demo_corpus("heldout", 16, **options)


def test_bad_crop_options_in_the_configuration_are_named():
    from inpainting.training.config import load_config

    with pytest.raises(ValueError, match="min_crop_scale must be 0"):
        load_config(min_crop_scale=2.0)
    with pytest.raises(ValueError, match="set one of them"):
        load_config(min_crop_scale=0.5, resize=True)


# ----------------------------------------------------------------------------- order and resume

def _folder(tmp_path, count=5):
    rng = np.random.default_rng(10)
    for i in range(count):
        _write(tmp_path / f"{i:02d}.png", _pixels(rng, 12, 14))
    return tmp_path


def test_sampler_visits_each_item_once_per_epoch_and_reshuffles():
    sampler = BatchSampler(7, seed=3)
    epochs = [[sampler.next_index() for _ in range(7)] for _ in range(3)]
    orders = [[index for _, index in epoch] for epoch in epochs]
    assert all(sorted(order) == list(range(7)) for order in orders)
    assert [e for e, _ in epochs[2]] == [2] * 7
    assert orders[0] != orders[1]
    assert orders[0] != [i for _, i in (BatchSampler(7, seed=4).next_index() for _ in range(7))]


def test_sampler_and_dataset_arguments_and_states_are_checked():
    with pytest.raises(ValueError, match="BatchSampler needs at least one item, got num_items=0"):
        BatchSampler(0)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -2"):
        BatchSampler(3, seed=-2)
    state = BatchSampler(5, seed=1).state_dict()
    with pytest.raises(ValueError, match="sampler state has num_items=5, this sampler has "
                                         "num_items=6: the state belongs to another data set"):
        BatchSampler(6, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="epoch=0, position=7 is out of range for 5 items"):
        BatchSampler(5, seed=1).load_state_dict({**state, "position": 7})
    blank = lambda: np.zeros((8, 8, 3), np.uint8)   # noqa: E731
    with pytest.raises(ValueError, match="2 names for 1 loaders"):
        ImageDataset(["a", "b"], [blank], 8)
    with pytest.raises(ValueError, match="image_size must be a positive int, got 0"):
        ImageDataset(["a"], [blank], 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ImageDataset(["a"], [blank], 8).next_batch(0)
    with pytest.raises(ValueError, match="unknown texture kind 'waves'; expected one of"):
        procedural_texture("waves", 0)


def test_figures_from_a_folder_of_only_unreadable_images_are_a_clear_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    data = ImageFolder(tmp_path, 8)
    with pytest.warns(RuntimeWarning, match="a.png"):
        with pytest.raises(ValueError, match="none of the 1 images could be read"):
            data.fixed_samples(2)


def test_same_seed_same_batches(tmp_path):
    source = _folder(tmp_path)
    first, second = ImageFolder(source, 8, seed=11), ImageFolder(source, 8, seed=11)
    for size in (3, 4, 2):
        np.testing.assert_array_equal(first.next_batch(size), second.next_batch(size))
    assert not np.array_equal(ImageFolder(source, 8, seed=12).next_batch(5),
                              ImageFolder(source, 8, seed=11).next_batch(5))


def test_resume_mid_epoch_reproduces_the_uninterrupted_run(tmp_path):
    source = _folder(tmp_path)
    reference = ImageFolder(source, 8, seed=5, random_flip=True)
    expected = [reference.next_batch(3) for _ in range(6)]
    interrupted = ImageFolder(source, 8, seed=5, random_flip=True)
    for batch in expected[:2]:
        np.testing.assert_array_equal(interrupted.next_batch(3), batch)
    state = interrupted.state_dict()
    assert state["epoch"] == 1 and state["position"] == 1  # 6 images drawn of 5 per epoch
    resumed = ImageFolder(source, 8, seed=5, random_flip=True)
    resumed.load_state_dict(dict(state))
    for batch in expected[2:]:
        np.testing.assert_array_equal(resumed.next_batch(3), batch)
    with pytest.raises(ValueError, match="seed"):
        ImageFolder(source, 8, seed=6).load_state_dict(state)


# ----------------------------------------------------------------------------- demo corpus

def test_demo_corpus_split_and_batches():
    train, heldout = demo_corpus("train", 32), demo_corpus("heldout", 32, seed=1)
    assert {"skimage:astronaut", "skimage:coffee"} <= set(heldout.names)
    assert not set(train.names) & set(heldout.names)
    assert len(train) == 29 and len(heldout) == 6
    batch = heldout.next_batch(4)
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == np.float32
    assert -1.0 <= batch.min() and batch.max() <= 1.0
    again = demo_corpus("heldout", 32, seed=1)
    np.testing.assert_array_equal(again.next_batch(4), batch)
    with pytest.raises(ValueError, match="split"):
        demo_corpus("test")


def test_procedural_textures_are_seeded():
    for kind in ("stripes", "checker", "gradient", "blobs"):
        a, b = procedural_texture(kind, 0, 32), procedural_texture(kind, 0, 32)
        assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert not np.array_equal(a, procedural_texture(kind, 1, 32))


# ----------------------------------------------------------------------------- imageio rules
def test_to_uint8_nearest_rounds_half_up():
    """rounding='nearest' is floor(x + 0.5): exact halves go up (32.5 -> 33, 64.5 -> 65),
    not to the even neighbour."""
    y64 = np.array([33 * 2 - 1], np.float64) / 255 - 1          # (y + 1) * 127.5 == 32.5
    assert (y64[0] + 1) * 127.5 == 32.5
    assert to_uint8(y64, "nearest")[0] == 33
    y32 = np.array([-0.49411765], np.float32)                   # float32: exactly 64.5
    assert (y32[0] + np.float32(1)) * np.float32(127.5) == np.float32(64.5)
    assert to_uint8(y32, "nearest")[0] == 65
    assert to_uint8(y32)[0] == 64


def test_to_uint8_computes_float32_input_in_float32():
    """(y + 1) * 127.5 is computed in the array's own float type: a float32 value whose float32
    product is exactly 96 truncates to 96, although in float64 it would be 95.99999998."""
    y = np.array([-0.24705882], np.float32)
    assert (y[0] + np.float32(1)) * np.float32(127.5) == np.float32(96.0)
    assert (np.float64(y[0]) + 1) * 127.5 < 96.0
    assert to_uint8(y)[0] == 96


def test_save_image_truncates_by_default(tmp_path):
    """save_image's default is the release's truncation: 63.75 is written as 63, 191.25 as 191
    (rounding='nearest' only when asked: 64)."""
    image = np.empty((3, 1, 2), np.float32)
    image[:, 0, 0], image[:, 0, 1] = -0.5, 0.5           # (y + 1) * 127.5 = 63.75, 191.25
    save_image(tmp_path / "t.png", image)
    assert read_rgb_uint8(tmp_path / "t.png")[0].tolist() == [[63] * 3, [191] * 3]
    save_image(tmp_path / "n.png", image, rounding="nearest")
    assert read_rgb_uint8(tmp_path / "n.png")[0].tolist() == [[64] * 3, [191] * 3]


def test_sixteen_bit_gray_is_rounded_to_eight_bits(tmp_path):
    """16-bit gray v is read as round(v / 257): 200 -> 1, 33096 -> 129, 65535 -> 255."""
    values = np.array([[0, 200, 33096, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    expected = [int(np.floor(v / 257 + 0.5)) for v in values[0]]
    assert expected == [0, 1, 129, 255]
    assert read_rgb_uint8(tmp_path / "g16.png")[0, :, 0].tolist() == expected


def test_bool_pixels_become_black_and_white():
    """as_rgb_uint8: bool True/False become 255/0, replicated over three channels."""
    out = as_rgb_uint8(np.array([[True, False]]))
    assert out.dtype == np.uint8 and out.tolist() == [[[255] * 3, [0] * 3]]


def test_exif_orientation_is_applied(tmp_path):
    """A file tagged EXIF orientation 6 ("rotate 90 degrees clockwise to display") is read
    rotated, as the release's OpenCV reader does."""
    pixels = (np.arange(2 * 3 * 3, dtype=np.uint8) * 10).reshape(2, 3, 3)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "rot.png", exif=exif)
    expected = np.empty((3, 2, 3), np.uint8)
    for r in range(3):
        for c in range(2):
            expected[r, c] = pixels[1 - c, r]                # clockwise quarter turn
    np.testing.assert_array_equal(read_rgb_uint8(tmp_path / "rot.png"), expected)
    np.testing.assert_allclose(load_image(tmp_path / "rot.png"),
                               (expected / 127.5 - 1).transpose(2, 0, 1), atol=1e-6)


# ----------------------------------------------------------------------------- crop rule, seeding keys, sampler bounds

def test_upscale_sizes_are_rounded_up():
    """Spec §6: an image smaller than S is scaled by max(S/H, S/W) with sizes rounded UP
    (10 x 32 at S = 16: scale 1.6, width 51.2 -> 52), then cropped at a uniform corner whose
    left edge reaches 52 - 16 = 36."""
    pixels = _pixels(np.random.default_rng(20), 10, 32)
    scale = max(16 / 10, 16 / 32)
    width, height = math.ceil(32 * scale), math.ceil(10 * scale)
    assert (width, height) == (52, 16)
    big = np.asarray(Image.fromarray(pixels).resize((width, height), Image.BILINEAR))
    lefts = set()
    for seed in range(120):
        out = to_uint8(random_crop_transform(pixels, 16, np.random.default_rng(seed)),
                       "nearest").transpose(1, 2, 0)
        found = [left for left in range(width - 16 + 1)
                 if np.array_equal(out, big[:, left:left + 16])]
        assert found, seed
        lefts.update(found)
    assert max(lefts) == width - 16 and min(lefts) == 0


def test_crop_corner_and_order_follow_the_documented_seed_keys():
    """The crop of image i in epoch e is drawn from PCG64(SeedSequence([seed, 1, e, i]))
    (top first, then left, each uniform and inclusive); epoch e's order is
    PCG64(SeedSequence([seed, 0, e, 0])).permutation(n): fixed keys keep recorded runs
    reproducible and the order and crop streams apart."""
    rng = np.random.default_rng(21)
    images = [_pixels(rng, 11, 13) for _ in range(4)]
    data = ImageDataset([f"i{k}" for k in range(4)], [lambda a=a: a for a in images], 8, seed=9)
    for epoch in (0, 1, 3):
        for index in range(4):
            key = np.random.Generator(np.random.PCG64(np.random.SeedSequence([9, 1, epoch, index])))
            top, left = int(key.integers(0, 11 - 8 + 1)), int(key.integers(0, 13 - 8 + 1))
            expected = images[index][top:top + 8, left:left + 8]
            got = to_uint8(data.sample(index, epoch), "nearest").transpose(1, 2, 0)
            np.testing.assert_array_equal(got, expected, err_msg=f"epoch {epoch} index {index}")
        perm = np.random.Generator(np.random.PCG64(np.random.SeedSequence([9, 0, epoch, 0])))
        assert data.sampler.order(epoch).tolist() == perm.permutation(4).tolist()


def test_crops_differ_between_images_and_between_epochs():
    """The crop corner depends on the image index and on the epoch: the same picture under
    eight indices is not cropped identically, nor one index in every epoch."""
    picture = _pixels(np.random.default_rng(22), 20, 20)
    data = ImageDataset([f"i{k}" for k in range(8)], [lambda: picture] * 8, 8, seed=4)
    by_index = {data.sample(i, 0).tobytes() for i in range(8)}
    by_epoch = {data.sample(0, e).tobytes() for e in range(8)}
    assert len(by_index) > 1 and len(by_epoch) > 1


def test_min_crop_scale_corner_reaches_the_last_row_and_column():
    """min_crop_scale: the square's corner is uniform over 0..H-side and 0..W-side inclusive
    (found by searching every side and corner over many draws)."""
    pixels = _pixels(np.random.default_rng(23), 10, 10)
    bottom = right = False
    for seed in range(60):
        matches = _crop_windows(_scaled_crop(pixels, 4, seed, 0.7), pixels, range(7, 11))
        assert matches, seed
        bottom |= any(side < 10 and top == 10 - side for side, top, _ in matches)
        right |= any(side < 10 and left == 10 - side for side, _, left in matches)
    assert bottom and right


def test_sampler_state_position_must_be_inside_the_epoch():
    """load_state_dict: position must be in [0, num_items); position == num_items is refused."""
    state = BatchSampler(5, seed=1).state_dict()
    with pytest.raises(ValueError, match="position=5 is out of range for 5 items"):
        BatchSampler(5, seed=1).load_state_dict({**state, "position": 5})
    with pytest.raises(ValueError, match="out of range"):
        BatchSampler(5, seed=1).load_state_dict({**state, "epoch": -1})
    sampler = BatchSampler(5, seed=1)
    sampler.load_state_dict({**state, "epoch": 2, "position": 4})
    assert sampler.next_index()[0] == 2 and (sampler.epoch, sampler.position) == (3, 0)


def test_random_flip_is_a_fair_coin():
    """random_flip: a horizontal flip with probability 1/2 (400 seeded draws: 150..250 flips)."""
    square = _pixels(np.random.default_rng(24), 8, 8)
    flipped = square[:, ::-1].transpose(2, 0, 1).tobytes()
    count = sum(to_uint8(random_crop_transform(square, 8, np.random.default_rng(s),
                                               random_flip=True), "nearest").tobytes() == flipped
                for s in range(400))
    assert 150 <= count <= 250, count


def test_min_crop_side_is_rounded_to_nearest():
    """min_crop_scale: side = round(f * min(H, W)) (nearest, not floor): with f in [0.9, 1]
    and a shorter side of 20, some draws take the whole 20 rows."""
    pixels = _pixels(np.random.default_rng(25), 20, 22)
    sides = set()
    for seed in range(30):
        windows = _crop_windows(_scaled_crop(pixels, 4, seed, 0.9), pixels, range(18, 21))
        sides.update(side for side, _, _ in windows)
    assert 20 in sides and sides <= {18, 19, 20}


def test_fixed_samples_read_only_the_images_they_need():
    """fixed_samples(count) reads the first ``count`` readable images and no further."""
    calls = []

    def loader(k):
        def load():
            calls.append(k)
            return np.full((8, 8, 3), 10 * k, np.uint8)
        return load

    data = ImageDataset([f"i{k}" for k in range(5)], [loader(k) for k in range(5)], 8)
    picks = data.fixed_samples(2)
    assert sorted(set(calls)) == [0, 1] and picks.shape == (2, 3, 8, 8)
