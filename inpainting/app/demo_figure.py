"""The teaching figure of ``inpainting demo``: where does each hole cell copy from?

Contextual attention (spec §3) fills a hole by borrowing features from known parts of the
same image. On its grid one cell is an 8x8 block of input pixels; for every hole cell it
scores every known cell, and the best-scoring one is the place it mostly copies from. The
figure shows that on two pictures, one per row:

* a periodic texture from the evaluation suite (``inpainting.textures``), where the right
  answer for every hole pixel is a known pixel one period away, i.e. copying from afar;
* a held-out bundled photograph, where there is no exact answer to copy.

Columns: input with the hole (white) and arrows from a few hole cells to the cell their
attention peaks on (a box marks each source) | coarse result (stage 1, no attention) |
result | attention offsets in the release's colours with a colour-wheel legend | ground
truth, and optionally a probe: the fill when the attention branch's features are replaced
by zeros before the decoder (``inpaint(..., knockout_attention=True)``). The probe is not
the paper's ablation (a generator trained without attention); it shows what this trained
decoder does without the branch's input.

``attention_sources`` picks the cells and their sources; ``demo_figure`` draws the figure
(a matplotlib ``Figure``); ``save_demo_figure`` writes it as a PNG (atomic).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure   # drawn without pyplot: no global backend switch
from matplotlib.patches import Rectangle

from nnlite.serialization import atomic_write

from ..training.viz import attention_rgb, to_display

__all__ = ["CELL", "DEMO_TEXTURE", "DemoRow", "attention_sources", "exact_sources", "inpaint_row",
           "demo_rows", "demo_figure", "save_demo_figure"]

#: pixels per attention cell side at the input scale (two stride-2 stages, then 2x2 patches)
CELL = 8

#: the suite texture the demo shows by default: round dots on a square lattice of period 16
#: pixels (2 cells), where a hole cell's answer lies a whole number of periods away
DEMO_TEXTURE = "dots-square-16"

#: arrow colours, one per picked hole cell
_COLOURS = ("#ff1f1f", "#1f9fff", "#20c020", "#ff9f00", "#c040ff", "#00d0d0")

_CAPTION = ("Arrows: a few hole cells (8x8 pixels) point to the known cell their contextual "
            "attention weighs most (box). Attention colour = direction of that copy "
            "(legend: centre = no offset, rim = longest offset in the picture).")


class DemoRow:
    """One row of the figure: a picture, its hole and the model's answers (NumPy, on the host).

    Args:
        label: the row's name (shown at its left).
        image: (3, H, W) truth in [-1, 1].
        mask: (H, W), 1 = hole.
        coarse, output: (3, H, W) stage-1 result and composited result in [-1, 1].
        offsets: (2, h, w) attention offsets or None (a generator without attention).
        attention: (h, w, h, w) attention scores or None.
        probe: optional (3, H, W) composited result with the attention branch knocked out.
    """

    def __init__(self, label, image, mask, coarse, output, offsets=None, attention=None,
                 probe=None):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"DemoRow: image must be (3, H, W), got shape {image.shape}")
        height, width = image.shape[1:]
        mask = np.asarray(mask)
        if mask.size != height * width:
            raise ValueError(f"DemoRow: mask must hold H x W = {height} x {width} values, got "
                             f"shape {mask.shape}")
        mask = mask.reshape(height, width)
        for name, array in (("coarse", coarse), ("output", output), ("probe", probe)):
            if (array is not None or name != "probe") and np.shape(array) != image.shape:
                raise ValueError(f"DemoRow: {name} must be {image.shape} like the image, got "
                                 f"{np.asarray(array).shape}")
        grid = (-(-height // CELL), -(-width // CELL))
        if attention is not None and np.asarray(attention).shape[:2] != grid:
            raise ValueError(f"DemoRow: attention must be (h, w, h, w) with (h, w) = {grid}, "
                             f"got {np.asarray(attention).shape}")
        self.label, self.image, self.mask = label, image, mask
        self.coarse, self.output = np.asarray(coarse), np.asarray(output)
        self.probe = None if probe is None else np.asarray(probe)
        self.offsets = None if offsets is None else np.asarray(offsets)
        self.attention = None if attention is None else np.asarray(attention)


def attention_sources(attention, mask, count=4):
    """``count`` hole cells spread over the hole and the cell each one's attention peaks on.

    Args:
        attention: (h, w, h, w) scores, ``attention[i, j, y, x]`` = weight hole cell (i, j)
            gives cell (y, x) (``InpaintResult.attention`` of one image).
        mask: (H, W) with (ceil(H / CELL), ceil(W / CELL)) = (h, w); a cell is a hole cell
            when more than half of its pixels are hole.
        count: how many cells (fewer when the hole has fewer cells).

    Returns a list of ``((i, j), (y, x))`` pairs: a hole cell and its argmax source cell. The
    cells are taken at even steps through the hole's cells in row-major order; a cell whose
    scores are all 0 (no valid known cell, e.g. a hole too large for a small image) has no
    source and is left out.
    """
    attention = np.asarray(attention)
    if attention.ndim != 4 or attention.shape[:2] != attention.shape[2:]:
        raise ValueError(f"attention_sources: attention must be (h, w, h, w), got shape "
                         f"{attention.shape}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"attention_sources: count must be a positive integer, got {count!r}")
    mask = np.asarray(mask, dtype=np.float64)
    rows, cols = attention.shape[:2]
    if mask.ndim != 2 or (-(-mask.shape[0] // CELL), -(-mask.shape[1] // CELL)) != (rows, cols):
        raise ValueError(f"attention_sources: mask must be (H, W) with ceil(H/{CELL}), "
                         f"ceil(W/{CELL}) = {(rows, cols)}, got shape {mask.shape}")
    padded = np.zeros((rows * CELL, cols * CELL))
    padded[:mask.shape[0], :mask.shape[1]] = mask > 0.5
    share = padded.reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))
    weighs = attention.reshape(rows, cols, -1).max(axis=2) > 0   # has a known cell to copy
    hole = np.argwhere((share > 0.5) & weighs)
    if len(hole) == 0:
        return []
    picks = np.unique(np.round(np.linspace(0, len(hole) - 1, min(count, len(hole))))
                      .astype(int))
    pairs = []
    for i, j in hole[picks]:
        y, x = np.unravel_index(int(np.argmax(attention[i, j])), (rows, cols))
        pairs.append(((int(i), int(j)), (int(y), int(x))))
    return pairs


def inpaint_row(generator, label, image, mask, probe=True):
    """Run ``generator`` on one (3, H, W) image with an (H, W) hole mask and gather a
    ``DemoRow``: attention scores when the generator has the branch, and the knockout probe
    when ``probe`` (and the branch exists)."""
    from nnlite.backend import device_of, to_device

    from ..model.inference import inpaint

    device = device_of(generator.conv1.weight.data)
    host = np.asarray(mask, dtype=np.float32).reshape((1, 1) + np.shape(image)[1:])
    image_d = to_device(np.asarray(image, dtype=np.float32)[None], device)
    mask_d = to_device(host, device)
    result = inpaint(generator, image_d, mask_d, return_attention=generator.attention)
    knocked = None
    if probe and generator.attention:
        knocked = inpaint(generator, image_d, mask_d, knockout_attention=True).output

    def host_of(array):
        return None if array is None else np.asarray(to_device(array, "cpu"))[0]

    return DemoRow(label, np.asarray(image), host[0, 0], host_of(result.coarse),
                   host_of(result.output), host_of(result.offsets), host_of(result.attention),
                   host_of(knocked))


def demo_rows(generator, size, texture, image, probe=True):
    """The two rows of ``inpainting demo``: ``inpaint_row`` on the suite's texture named
    ``texture`` and on the held-out photo named ``image`` (e.g. "astronaut"), both at
    ``size`` x ``size`` with the centred (size/2) x (size/2) hole."""
    from ..data.datasets import demo_corpus
    from ..data.masks import centered_bbox_mask
    from ..data.textures import TEXTURE_SUITE, texture_suite

    dataset = demo_corpus("heldout", size, resize=True)
    photo = dataset.sample(dataset.names.index(f"skimage:{image}"), 0)
    textures = [name for name, _, _ in TEXTURE_SUITE]
    pattern = texture_suite(size)[1][textures.index(texture)]
    mask, _ = centered_bbox_mask(size, size // 2)
    return [inpaint_row(generator, f"texture: {texture}", pattern, mask[0, 0], probe),
            inpaint_row(generator, f"photo: {image} (held out)", photo, mask[0, 0], probe)]


def exact_sources(image, pairs, tolerance=0.02):
    """How many ``pairs`` (from ``attention_sources``) copy from a cell whose 8x8 block of
    ``image`` (3, H, W) equals the hole cell's own hidden block (largest difference below
    ``tolerance``, in [-1, 1] units; 0.02 is about one 8-bit level): on a periodic texture,
    a source a whole number of periods away. Blocks at the border are compared where both
    exist."""
    image = np.asarray(image)
    height, width = image.shape[1:]
    same = 0
    for (i, j), (y, x) in pairs:
        rows = min(CELL, height - i * CELL, height - y * CELL)
        cols = min(CELL, width - j * CELL, width - x * CELL)
        target = image[:, i * CELL:i * CELL + rows, j * CELL:j * CELL + cols]
        source = image[:, y * CELL:y * CELL + rows, x * CELL:x * CELL + cols]
        same += bool(np.abs(target - source).max() < tolerance)
    return same


def _centre(cell):
    """(row, col) cell -> (x, y) pixel coordinates of its centre, for matplotlib."""
    return (cell[1] * CELL + (CELL - 1) / 2, cell[0] * CELL + (CELL - 1) / 2)


def _draw_arrows(axis, pairs):
    for k, (start, source) in enumerate(pairs):
        colour = _COLOURS[k % len(_COLOURS)]
        axis.plot(*_centre(start), marker="o", markersize=3.5, color=colour)
        axis.annotate("", xy=_centre(source), xytext=_centre(start),
                      arrowprops=dict(arrowstyle="->", color=colour, linewidth=1.6,
                                      shrinkA=0, shrinkB=0))
        axis.add_patch(Rectangle((source[1] * CELL - 0.5, source[0] * CELL - 0.5), CELL, CELL,
                                 fill=False, edgecolor=colour, linewidth=1.4))


def demo_figure(rows, arrows=4):
    """The teaching figure for ``rows`` (a list of ``DemoRow``).

    Returns ``(figure, pairs)``: the matplotlib ``Figure`` and, per row, the
    ``attention_sources`` pairs its arrows were drawn from ([] without attention). A probe
    column is drawn when every row has a ``probe``.
    """
    if not rows or not all(isinstance(row, DemoRow) for row in rows):
        raise ValueError("demo_figure: rows must be a non-empty list of DemoRow")
    with_probe = all(row.probe is not None for row in rows)
    titles = ["input + where cells copy from", "coarse (stage 1)", "result",
              "attention offsets", "ground truth"]
    if with_probe:
        titles.append("probe: attention knocked out")
    figure = Figure(figsize=(2.3 * len(titles), 2.45 * len(rows) + 0.55))
    axes = np.asarray(figure.subplots(len(rows), len(titles), squeeze=False))
    all_pairs = []
    for r, row in enumerate(rows):
        height, width = row.image.shape[1:]
        truth = to_display(row.image)
        shown = truth.copy()
        shown[row.mask > 0.5] = 255
        attention = attention_rgb(None if row.offsets is None else row.offsets[None],
                                  height, width)[0]
        panels = [shown, to_display(row.coarse), to_display(row.output), attention, truth]
        if with_probe:
            panels.append(to_display(row.probe))
        for c, panel in enumerate(panels):
            axis = axes[r, c]
            axis.imshow(panel)
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(titles[c], fontsize=9)
        label = row.label
        if row.attention is not None:
            every = attention_sources(row.attention, row.mask, row.attention[..., 0, 0].size)
            label += (f"\nsource block = hidden block: {exact_sources(row.image, every)}"
                      f"/{len(every)} cells")
        axes[r, 0].set_ylabel(label, fontsize=8)
        pairs = [] if row.attention is None else attention_sources(row.attention, row.mask,
                                                                   arrows)
        _draw_arrows(axes[r, 0], pairs)
        if row.offsets is None:
            axes[r, 3].text(0.5, 0.5, "no attention branch", ha="center", va="center",
                            transform=axes[r, 3].transAxes, fontsize=8)
        else:
            _legend(axes[r, 3])
        all_pairs.append(pairs)
    figure.text(0.5, 0.01, _CAPTION, ha="center", va="bottom", fontsize=8, wrap=True)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return figure, all_pairs


def _legend(axis):
    from ..model.attention_colours import color_wheel_legend

    inset = axis.inset_axes([0.0, 0.75, 0.25, 0.25])   # top left, clear of a centred hole
    inset.imshow(color_wheel_legend(41))
    inset.set_xticks([])
    inset.set_yticks([])


def save_demo_figure(path, rows, arrows=4, dpi=100):
    """Draw ``demo_figure(rows, arrows)`` and write it as a PNG at ``path`` (atomic).
    Returns ``(path, pairs)``."""
    figure, pairs = demo_figure(rows, arrows)
    with atomic_write(path) as stream:
        figure.savefig(stream, format="png", dpi=dpi)
    return path, pairs
