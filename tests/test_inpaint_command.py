"""``inpainting inpaint``: outputs never replace inputs unless asked, every output path is
checked before the work and written all or none, and the batch features (one mask for a
folder, --dilate / --erode, skipped files listed), --release-rounding and --full-image."""
import os

import numpy as np
import pytest
from PIL import Image

from inpainting.app import cli
from inpainting.app.inpaint_files import _write_all, adjust_hole
from inpainting.weights.model_io import load_generator, save_generator
from inpainting.model.networks import InpaintGenerator


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    save_generator(path, InpaintGenerator(4, rng=np.random.default_rng(0)), image_size=32)
    return path


def _pair(folder, stem, size=(24, 32), box=(slice(8, 16), slice(10, 22)), mask_name=None):
    rng = np.random.default_rng(len(stem))
    image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    mask = np.zeros(size, np.uint8)
    mask[box] = 255
    Image.fromarray(image).save(folder / f"{stem}.png")
    Image.fromarray(mask).save(folder / (mask_name or f"{stem}_mask.png"))
    return image, mask > 127


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err.strip()


def _refused(capsys, *argv, fragments=()):
    code, error = _run(capsys, *argv)
    assert code == 2 and len(error.splitlines()) == 1, error
    for fragment in fragments:
        assert fragment in error, (fragment, error)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_outputs_that_are_inputs_are_refused_unless_overwrite(tmp_path, tiny_model, capsys):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir(), masks.mkdir()
    for stem in ("a", "b"):
        _pair(photos, stem, mask_name=f"../masks/{stem}.png")
    before = {**_snapshot(photos), **_snapshot(masks)}
    weights = ["--weights", tiny_model]
    one = [photos / "a.png", masks / "a.png"]
    _refused(capsys, "inpaint", *one, "-o", photos / "a.png", *weights,
             fragments=("a.png is an input file", "--overwrite"))
    _refused(capsys, "inpaint", *one, "-o", tmp_path / "o.png", "--coarse", masks / "a.png",
             *weights, fragments=("--coarse",))
    _refused(capsys, "inpaint", *one, "-o", tmp_path / "o.png", "--attention", tmp_path / "o.png",
             *weights, fragments=("-o and --attention both name",))
    for folder in (photos, masks, photos / "results"):
        _refused(capsys, "inpaint", photos, masks, "-o", folder, *weights,
                 fragments=("inside the input folder", "--overwrite"))
    assert {**_snapshot(photos), **_snapshot(masks)} == before
    assert not (tmp_path / "o.png").exists() and not (photos / "results").exists()
    assert cli.main(["inpaint", *map(str, one), "-o", str(photos / "a.png"), "--overwrite",
                     *map(str, weights)]) == 0
    assert (photos / "a.png").read_bytes() != before["a.png"]


class _Refusing(InpaintGenerator):
    """A generator that fails the test if inference runs."""

    def forward(self, *args, **kwargs):
        pytest.fail("inference ran")


class _Recording(InpaintGenerator):
    """A generator that records the (height, width) of every input it is run on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def forward(self, x, mask, **kwargs):
        self.seen.append(tuple(x.shape[2:]))
        return super().forward(x, mask, **kwargs)


def _loaded_as(cls, path):
    """The model file ``path`` loaded into a ``cls`` (a subclass of InpaintGenerator)."""
    model = load_generator(path)
    generator = cls(model.cnum, attention=model.attention)
    generator.load_state_dict(model.state_dict())
    generator.meta = model.meta
    return generator


def _refused_by(capsys, generator, *argv, fragments):
    assert cli.main([str(a) for a in argv], generator=generator) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_every_output_path_is_checked_before_the_work(tmp_path, tiny_model, capsys):
    _pair(tmp_path, "p")
    refusing = _loaded_as(_Refusing, tiny_model)
    pair = [tmp_path / "p.png", tmp_path / "p_mask.png"]
    weights = ["--weights", tiny_model]
    _refused_by(capsys, refusing, "inpaint", *pair, "-o", tmp_path / "o.png", "--attention",
                tmp_path / "nowhere" / "att.png", *weights,
                fragments=("nowhere does not exist",))
    _refused_by(capsys, refusing, "inpaint", *pair, "-o", tmp_path / "o.png", "--coarse",
                tmp_path / "c.xyz", *weights, fragments=("unknown image extension '.xyz'",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "p_mask.png"]


def test_outputs_are_written_all_or_none(tmp_path):
    class Failing:
        def save(self, stream, format):
            raise OSError("disk full")

    good = Image.fromarray(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(OSError, match="disk full"):
        _write_all([(tmp_path / "coarse.png", good), (tmp_path / "out.png", Failing())])
    assert list(tmp_path.iterdir()) == []
    _write_all([(tmp_path / "coarse.png", good), (tmp_path / "out.png", good)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coarse.png", "out.png"]


def test_adjust_hole_is_a_square_erosion_then_dilation():
    rng = np.random.default_rng(0)
    hole = rng.random((20, 25)) > 0.6

    def step(mask, grow):
        out = mask.copy()
        for r in range(mask.shape[0]):
            for c in range(mask.shape[1]):
                window = [mask[rr, cc] if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1]
                          else not grow for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2)]
                out[r, c] = any(window) if grow else all(window)
        return out

    expected = step(step(step(hole, False), True), True)
    np.testing.assert_array_equal(adjust_hole(hole, erode=1, dilate=2), expected)


def test_dilate_and_erode_change_which_pixels_are_filled(tmp_path, tiny_model):
    image, hole = _pair(tmp_path, "p")
    args = ["inpaint", str(tmp_path / "p.png"), str(tmp_path / "p_mask.png"),
            "--weights", str(tiny_model), "--quiet"]
    for flag, count in (("--dilate", 2), ("--erode", 2)):
        out = tmp_path / f"{flag[2:]}.png"
        assert cli.main(args + ["-o", str(out), flag, str(count)]) == 0
        changed = np.any(np.asarray(Image.open(out)) != image, axis=2)
        filled = adjust_hole(hole, **{flag[2:]: count})
        assert not changed[~filled].any()                      # outside: untouched
        assert changed[filled].mean() > 0.9                    # inside: the fill
    assert cli.main(args + ["-o", str(tmp_path / "x.png"), "--dilate", "-1"]) == 2


def test_a_folder_run_skips_what_it_cannot_do_and_lists_it(tmp_path, tiny_model, capsys):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir(), masks.mkdir()
    _pair(photos, "good", mask_name="../masks/good.png")
    _pair(photos, "nomask", mask_name="../unused.png")
    _pair(photos, "small", mask_name="../masks/small.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / "small.png")   # wrong size
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(masks / "broken.png")
    code, error = _run(capsys, "inpaint", photos, masks, "-o", out, "--weights", tiny_model)
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    lines = error.splitlines()
    assert "skipped 3 of 4 images:" in lines
    for stem, reason in (("broken", "cannot read image"), ("nomask", "no mask named nomask.*"),
                         ("small", "(8, 8)")):
        assert any(f"{stem}.png" in line and reason in line for line in lines), (stem, error)


def test_release_rounding_and_full_image_reach_the_run(tmp_path, tiny_model):
    image = np.full((40, 64, 3), 20, np.uint8)
    Image.fromarray(image).save(tmp_path / "p.png")
    mask = np.zeros((40, 64), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    args = ["inpaint", str(tmp_path / "p.png"), str(tmp_path / "m.png"), "--weights",
            str(tiny_model), "--quiet"]
    assert cli.main(args + ["-o", str(tmp_path / "own.png")]) == 0
    assert cli.main(args + ["-o", str(tmp_path / "rel.png"), "--release-rounding"]) == 0
    assert np.asarray(Image.open(tmp_path / "own.png"))[0, 0, 0] == 20
    assert np.asarray(Image.open(tmp_path / "rel.png"))[0, 0, 0] == 19     # the truncation
    cropped, full = _loaded_as(_Recording, tiny_model), _loaded_as(_Recording, tiny_model)
    assert cli.main(args + ["-o", str(tmp_path / "a.png")], generator=cropped) == 0   # 64 > 32
    assert cli.main(args + ["-o", str(tmp_path / "f.png"), "--full-image"], generator=full) == 0
    assert cropped.seen and (40, 64) not in cropped.seen and full.seen == [(40, 64)]


def test_options_of_the_inference_commands_state_their_defaults():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("inpaint", "demo", "convert-release", "average-weights"):
        for action in commands[name]._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
            if action.option_strings:
                assert "default" in action.help or "required" in action.help, (name, action.dest)


def test_runs_that_cannot_fit_are_refused_in_one_line_before_the_work(tmp_path, tiny_model,
                                                                      capsys, monkeypatch):
    _pair(tmp_path, "p", size=(40, 64))
    monkeypatch.setenv("INPAINTING_MEMORY_LIMIT", "1000")      # bytes: nothing fits
    refusing = _loaded_as(_Refusing, tiny_model)
    pair = [tmp_path / "p.png", tmp_path / "p_mask.png", "-o", tmp_path / "o.png",
            "--weights", tiny_model]
    _refused_by(capsys, refusing, "inpaint", *pair,
                fragments=("GiB", "choose a smaller --working-size"))
    _refused_by(capsys, refusing, "inpaint", *pair, "--full-image",
                fragments=("drop --full-image",))
    _refused_by(capsys, refusing, "inpaint", *pair, "--border", "crop",
                fragments=("--border crop runs the whole image",))
    assert not (tmp_path / "o.png").exists()


def test_an_all_white_mask_is_an_error_not_a_gray_picture(tmp_path, tiny_model, capsys):
    _pair(tmp_path, "p", box=(slice(None), slice(None)))
    _refused(capsys, "inpaint", tmp_path / "p.png", tmp_path / "p_mask.png", "-o",
             tmp_path / "o.png", "--weights", tiny_model, fragments=("all hole",))
    assert not (tmp_path / "o.png").exists()


def test_the_memory_limit_variable_caps_the_available_memory(monkeypatch):
    """INPAINTING_MEMORY_LIMIT (bytes) caps available_memory; anything but a whole number
    of bytes is a one-line error."""
    from inpainting.app.large_images import available_memory

    monkeypatch.delenv("INPAINTING_MEMORY_LIMIT", raising=False)
    free = available_memory()
    assert free > 1000
    monkeypatch.setenv("INPAINTING_MEMORY_LIMIT", "1000")
    assert available_memory() == 1000
    monkeypatch.setenv("INPAINTING_MEMORY_LIMIT", str(10 * free))
    assert 0 < available_memory() <= 10 * free
    monkeypatch.setenv("INPAINTING_MEMORY_LIMIT", "2GB")
    with pytest.raises(ValueError, match="whole number of bytes, got '2GB'"):
        available_memory()
