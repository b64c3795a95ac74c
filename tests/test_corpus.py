"""scripts/build_corpus.py (without downloading: its pieces on synthetic files) and the
trainer's corpus-manifest check."""
import hashlib
import importlib.util
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpainting.training.config import TrainConfig
from inpainting.training.train import check_manifest, make_dataset

_spec = importlib.util.spec_from_file_location(
    "build_corpus", Path(__file__).resolve().parents[1] / "scripts" / "build_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


def test_no_external_test_set_package_is_a_source():
    for package in corpus.PACKAGES:
        assert not any(bad in package for bad in corpus.EXCLUDED_PACKAGES), package


def test_gimp_pattern_reader():
    pixels = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    name = b"test\0"
    header = struct.pack(">5I", 24 + len(name), 1, 4, 5, 3) + b"GPAT" + name
    image = corpus.read_pat(header + pixels.tobytes())
    np.testing.assert_array_equal(np.asarray(image), pixels)
    with pytest.raises(ValueError, match="GIMP"):
        corpus.read_pat(struct.pack(">5I", 24, 1, 4, 5, 3) + b"NOPE" + pixels.tobytes())


def test_groups_keep_variants_of_one_picture_together():
    g = corpus.group_of
    assert g("sway-backgrounds", "usr/share/backgrounds/sway/Sway_Wallpaper_Blue_1366x768.png") == \
        g("sway-backgrounds", "usr/share/backgrounds/sway/Sway_Wallpaper_Blue_768x1024_Portrait.png")
    assert g("gnome-backgrounds", "x/wood-l.webp") == g("gnome-backgrounds", "x/wood-d.webp")
    assert g("desktop-base", "usr/share/desktop-base/emerald-theme/grub/grub-4x3.png") == \
        g("desktop-base", "usr/share/desktop-base/emerald-theme/login/background.svg.png")
    assert g("ufoai-textures", "a.pk3!textures/tex_a/crate_a.png") == \
        g("ufoai-textures", "a.pk3!textures/tex_a/crate_b.png") != \
        g("ufoai-textures", "a.pk3!textures/tex_b/crate_a.png")


def test_split_is_by_group_and_near_the_requested_share():
    groups = [f"pkg:group{i}" for i in range(2000)]
    splits = [corpus.split_of(group, "texture") for group in groups]
    assert splits == [corpus.split_of(group, "texture") for group in groups]    # deterministic
    share = splits.count("val") / len(splits)
    assert abs(share - corpus.VAL_PERCENT["texture"] / 100) < 0.03


def test_pictures_kept_and_dropped():
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
    assert corpus.is_picture("p", "texture", "a.pk3!t/wall.jpg", noisy) is None
    assert corpus.is_picture("p", "texture", "a.pk3!t/wall_nm.jpg", noisy) == "a texture map, not a picture"
    assert corpus.is_picture("p", "texture", "t/small.png", noisy.crop((0, 0, 64, 64))) == "too small"
    flat = Image.new("RGB", (200, 200), (90, 90, 90))
    assert corpus.is_picture("p", "texture", "t/flat.png", flat) == "flat"
    decal = noisy.convert("RGBA")
    decal.putalpha(Image.new("L", (200, 200), 0))
    assert corpus.is_picture("p", "texture", "t/decal.png", decal) == "transparent (a decal)"


def test_training_flist_repeats_photos_to_their_share(tmp_path):
    images = [{"path": f"train/photos/p{i}.png", "split": "train", "kind": "photo"} for i in range(2)]
    images += [{"path": f"train/textures/t{i}.png", "split": "train", "kind": "texture"} for i in range(30)]
    images += [{"path": "val/photos/v.png", "split": "val", "kind": "photo"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"images": images}))
    lines = [l for l in corpus.write_training_flist(tmp_path, 0.4).read_text().splitlines()
             if not l.startswith("#")]
    assert lines.count("train/photos/p0.png") == 10 and len(lines) == 50      # 20 / 50 = 0.4
    assert "val/photos/v.png" not in lines


def test_verify_finds_a_changed_file(tmp_path):
    image = Image.fromarray(np.full((4, 4, 3), 7, np.uint8))
    sha = corpus.write_png(image, tmp_path / "train/photos/a.png")
    entry = {"path": "train/photos/a.png", "sha256": sha, "pixels_sha256": corpus.pixels_sha256(image)}
    (tmp_path / "manifest.json").write_text(json.dumps({"images": [entry]}))
    assert corpus.verify(tmp_path) == 0
    corpus.write_png(Image.fromarray(np.full((4, 4, 3), 8, np.uint8)), tmp_path / "train/photos/a.png")
    assert corpus.verify(tmp_path) == 1


def test_trainer_refuses_another_corpus(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "list.flist").write_text("a.png\n")
    (tmp_path / "manifest.json").write_text("{}")
    right = hashlib.sha256(b"{}").hexdigest()
    check_manifest(tmp_path / "list.flist", right)
    config = TrainConfig(data=str(tmp_path / "list.flist"), image_size=32, bbox_size=16,
                         max_delta=2, data_manifest_sha256="0" * 64)
    with pytest.raises(ValueError, match="not the corpus"):
        make_dataset(config)
    assert len(make_dataset(config.replace(data_manifest_sha256=right))) == 1
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ValueError, match="does not exist"):
        check_manifest(tmp_path, right)


def test_names_cannot_collide(tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    first = corpus._write(tmp_path, "pkg", "texture", "a.pk3!t/oquartz/+0sflob.tga", "g", image)
    second = corpus._write(tmp_path, "pkg", "texture", "a.pk3!t/oquartz/0sflob.tga", "g", image)
    assert first["path"] != second["path"]
    (tmp_path / "manifest.json").write_text(json.dumps({"images": [first, first]}))
    assert corpus.verify(tmp_path) == 1                  # a path listed twice is an error


def test_photos_only_packages_read_just_the_listed_photographs(tmp_path):
    assert set(corpus.PHOTOS_ONLY) <= {p for p, kind in corpus.PACKAGES.items() if kind == "photo"}
    folder = tmp_path / "usr/share/lxqt/wallpapers"
    folder.mkdir(parents=True)
    for name in ("fog.jpg", "origami-dark.png", "kde-plasma.png", "fog.jpg.txt"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "usr/share/lxqt/themes").mkdir(parents=True)
    (tmp_path / "usr/share/lxqt/themes/fog.jpg").write_bytes(b"x")       # right name, wrong place
    found = [original for original, _ in corpus.candidates("lxqt-themes", tmp_path)]
    assert found == ["usr/share/lxqt/wallpapers/fog.jpg"]
    # a package without a list reads every image it has (Plasma paths excepted)
    found = sorted(original for original, _ in corpus.candidates("gnome-backgrounds", tmp_path))
    assert found == ["usr/share/lxqt/themes/fog.jpg", "usr/share/lxqt/wallpapers/fog.jpg",
                     "usr/share/lxqt/wallpapers/origami-dark.png"]


def test_a_series_shares_a_group_but_each_photo_is_kept():
    folder = "usr/share/hugin/xrc/data/help_en_EN/"
    g = corpus.group_of
    assert g("hugin-data", folder + "CA_tCA00.jpg") == g("hugin-data", folder + "CA_tCA03.jpg") \
        == "hugin-data:ca_tca"
    assert g("hugin-data", folder + "Big_ben_rectilinear.jpg") != g("hugin-data", folder + "CA_tCA00.jpg")
    keys = {corpus.variant_key("hugin-data", folder + f"CA_tCA0{i}.jpg", "hugin-data:ca_tca")
            for i in range(4)}
    assert len(keys) == 4
    # elsewhere one key per group: sizes and light/dark variants are one picture
    assert corpus.variant_key("gnome-backgrounds", "x/wood-l.webp", "gnome-backgrounds:wood") == \
        corpus.variant_key("gnome-backgrounds", "x/wood-d.webp", "gnome-backgrounds:wood")


def test_near_duplicates_are_dropped_and_the_first_is_kept():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:300, 0:400]
    scene = np.stack([(x * 0.6) % 256, (y * 0.8) % 256, ((x + y) * 0.3) % 256], -1).astype(np.uint8)
    picture = Image.fromarray(scene)
    smaller = picture.resize((200, 150), Image.LANCZOS)                         # another size
    noisy = Image.fromarray(np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8))
    other = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    photos = [("a", picture), ("b", smaller), ("c", other), ("d", noisy)]
    kept, dropped = corpus.drop_near_duplicates(photos)
    assert [p[0] for p in kept] == ["a", "c"] and [p[0] for p in dropped] == ["b", "d"]
    flipped = Image.fromarray(scene[:, ::-1].copy())                           # a different view
    assert len(corpus.drop_near_duplicates([("a", picture), ("f", flipped)])[0]) == 2
