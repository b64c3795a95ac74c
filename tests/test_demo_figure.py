"""The teaching figure of ``inpainting demo`` (inpainting/app/demo_figure.py), on tiny models."""
import numpy as np
import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation
from PIL import Image

from inpainting.app import cli
from inpainting.app.demo_figure import (CELL, DEMO_TEXTURE, DemoRow, attention_sources, demo_figure,
                                        demo_rows, exact_sources, inpaint_row, save_demo_figure)
from inpainting.model_io import save_generator
from inpainting.model.networks import InpaintGenerator


def _picture(size=32, seed=0):
    image = np.random.default_rng(seed).uniform(-1, 1, (3, size, size)).astype(np.float32)
    mask = np.zeros((size, size), np.float32)
    mask[size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
    return image, mask


def _loop_argmax(scores):
    """The (y, x) of the largest entry of a (h, w) array, by a plain loop (first one wins)."""
    best, where = -np.inf, None
    for y in range(scores.shape[0]):
        for x in range(scores.shape[1]):
            if scores[y, x] > best:
                best, where = scores[y, x], (y, x)
    return where


def _arrows(axis):
    return [(a.xyann, a.xy) for a in axis.texts if isinstance(a, Annotation)]


def test_arrows_start_in_the_hole_and_end_at_the_attention_argmax():
    generator = InpaintGenerator(4, rng=np.random.default_rng(3))
    image, mask = _picture(64)
    row = inpaint_row(generator, "random", image, mask)
    assert row.attention.shape == (8, 8, 8, 8) and row.probe is not None
    peaks = {_loop_argmax(row.attention[i, j]) for i in range(2, 6) for j in range(2, 6)}
    assert len(peaks) > 1                    # sources differ: a wrong argmax would show
    figure, pairs = demo_figure([row], arrows=3)
    arrows = _arrows(figure.axes[0])
    assert len(arrows) == len(pairs[0]) == 3
    boxes = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert len(boxes) == 3
    for (start, end), box in zip(arrows, boxes):
        x0, y0 = start
        assert mask[int(round(y0)), int(round(x0))] == 1          # starts in the hole
        i, j = int(y0 // CELL), int(x0 // CELL)
        y, x = _loop_argmax(row.attention[i, j])                  # independent argmax
        assert end == pytest.approx((x * CELL + (CELL - 1) / 2, y * CELL + (CELL - 1) / 2))
        assert box.get_xy() == pytest.approx((x * CELL - 0.5, y * CELL - 0.5))
        assert box.get_width() == box.get_height() == CELL
        assert mask[y * CELL:(y + 1) * CELL, x * CELL:(x + 1) * CELL].max() == 0   # known cell


def test_attention_sources_picks_hole_cells_and_their_loop_argmax():
    rng = np.random.default_rng(1)
    attention = rng.random((4, 6, 4, 6))
    mask = np.zeros((30, 44))            # grid ceil(30/8) x ceil(44/8) = 4 x 6
    mask[8:24, 16:40] = 1                # hole cells: rows 1-2, columns 2-4
    pairs = attention_sources(attention, mask, count=100)
    assert [cell for cell, _ in pairs] == [(i, j) for i in (1, 2) for j in (2, 3, 4)]
    for (i, j), source in pairs:
        assert source == _loop_argmax(attention[i, j])
    assert len(attention_sources(attention, mask, count=2)) == 2
    assert attention_sources(attention, np.zeros((30, 44))) == []
    attention[1, 2] = 0                  # nothing to copy from: that cell gets no arrow
    assert (1, 2) not in [cell for cell, _ in attention_sources(attention, mask, count=100)]


def test_exact_sources_counts_blocks_equal_to_the_hidden_truth():
    """On a texture of period 16 px (2 cells), a source 2 cells away matches, 1 cell away
    does not; the count agrees with a per-pixel loop."""
    y, x = np.mgrid[0:32, 0:32]
    image = np.stack([np.sin(2 * np.pi * x / 16), np.cos(2 * np.pi * y / 16), 0 * x]).astype(
        np.float32)
    pairs = [((1, 1), (1, 3)), ((1, 1), (3, 1)), ((1, 1), (1, 2)), ((2, 2), (0, 0))]
    expected = 0
    for (i, j), (sy, sx) in pairs:
        worst = 0.0
        for c in range(3):
            for dy in range(CELL):
                for dx in range(CELL):
                    worst = max(worst, abs(image[c, i * CELL + dy, j * CELL + dx]
                                           - image[c, sy * CELL + dy, sx * CELL + dx]))
        expected += worst < 0.02
    assert exact_sources(image, pairs) == expected == 3


def test_demo_command_writes_the_expected_layout(tmp_path, capsys):
    from inpainting.weights.model_io import load_generator

    model = tmp_path / "tiny.npz"
    save_generator(model, InpaintGenerator(4, rng=np.random.default_rng(0)), image_size=32)
    for extra, columns in (([], 6), (["--no-probe"], 5)):
        out = tmp_path / f"demo{columns}.png"
        assert cli.main(["demo", "--weights", str(model), "--size", "64", "--out", str(out),
                         *extra]) == 0
        # the figure the command drew: the same rows drawn again, pixel for pixel its file
        rows = demo_rows(load_generator(model), 64, DEMO_TEXTURE, "astronaut", not extra)
        figure, _ = demo_figure(rows)
        again, _ = save_demo_figure(tmp_path / "again.png", rows)
        np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(out)))
        width, height = Image.open(out).size
        assert (width, height) == tuple(round(v * 100) for v in figure.get_size_inches())
        grid = [a for a in figure.axes if a.get_title() or a.get_ylabel() or a.images]
        main = [a for a in grid if a.get_subplotspec() is not None]
        assert len(main) == 2 * columns
        assert [a.get_title() for a in main[:columns]][:5] == [
            "input + where cells copy from", "coarse (stage 1)", "result",
            "attention offsets", "ground truth"]
        assert main[0].get_ylabel().startswith(f"texture: {DEMO_TEXTURE}")
        assert main[columns].get_ylabel().startswith("photo: astronaut")
        assert all(len(_arrows(main[r * columns])) == 4 for r in range(2))
        for row in rows:                          # the centred (size/2)^2 hole at size 64
            expected = np.zeros((64, 64))
            expected[16:48, 16:48] = 1
            np.testing.assert_array_equal(row.mask, expected)
    printed = capsys.readouterr().out
    assert printed.count("PSNR in hole") == 4 and printed.count("hole cells") == 4


def test_a_generator_without_attention_gets_no_arrows_and_a_gray_panel(tmp_path):
    generator = InpaintGenerator(4, attention=False, rng=np.random.default_rng(0))
    image, mask = _picture(32)
    row = inpaint_row(generator, "ablation", image, mask)
    assert row.attention is None and row.probe is None
    path, pairs = save_demo_figure(tmp_path / "d.png", [row])
    assert pairs == [[]] and path.is_file()
    figure, _ = demo_figure([row])
    assert np.all(figure.axes[3].images[0].get_array() == 128)


def _fails_with(capsys, argv, *fragments):
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    out = tmp_path / "d.png"
    _fails_with(capsys, ["demo", "--texture", "plaid", "--out", out], "--texture",
                "dots-square-16", "'plaid'")
    _fails_with(capsys, ["demo", "--image", "cat", "--out", out], "astronaut, coffee", "'cat'")
    _fails_with(capsys, ["demo", "--size", "20", "--out", out], "--size", "got 20")
    assert not out.exists()
    image, mask = _picture(16)
    with pytest.raises(ValueError, match=r"attention must be \(h, w, h, w\)"):
        attention_sources(np.zeros((2, 2, 2)), mask)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        attention_sources(np.zeros((2, 2, 2, 2)), mask, count=0)
    with pytest.raises(ValueError, match="mask must be"):
        attention_sources(np.zeros((3, 3, 3, 3)), mask)
    with pytest.raises(ValueError, match="mask must hold H x W"):
        DemoRow("x", image, mask[:8], image, image)
    with pytest.raises(ValueError, match="output must be"):
        DemoRow("x", image, mask, image, image[:, :8])
    with pytest.raises(ValueError, match="coarse must be"):
        DemoRow("x", image, mask, None, image)
    with pytest.raises(ValueError, match="rows must be a non-empty list"):
        demo_figure([])
