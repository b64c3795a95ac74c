"""Classical (non-learned) inpainting baselines, to compare with DeepFill on the same images.

All take an image float (3, H, W) in [-1, 1] and a mask (1, H, W) or (H, W) with 1 = hole, and
return float32 (3, H, W) in [-1, 1] whose known pixels are the input's:

* ``mean_fill``: every hole pixel gets the mean colour of the known pixels (per channel);
* ``harmonic_fill``: the hole solves Laplace's equation (discrete, 4-neighbour) with the known
  pixels as boundary values: u_p = mean of u over p's neighbours inside the image, for every
  hole pixel p. One sparse LU factorisation, solved for the three channels at once (SciPy);
* ``biharmonic_fill``: ``skimage.restoration.inpaint_biharmonic`` (smoother; slower);
* ``telea_fill`` / ``ns_fill``: OpenCV's ``cv2.inpaint`` (Telea's fast marching method,
  Navier-Stokes), radius 3, on the image rounded to 8 bits (what they accept for colour);
* ``exemplar_fill``: OpenCV's ``cv2.xphoto.inpaint`` with shift-map (He and Sun 2012) in
  CIELab: every hole pixel copies a known pixel under a smooth field of shifts. It stands
  in for PatchMatch (Barnes et al. 2009), the exemplar method of the paper's Table 1.

The OpenCV fills need the optional extra ``[eval]`` (opencv-contrib-python-headless);
without it they raise ``MissingExtraError`` naming it. A hole with no known pixel at all
cannot be filled by any of them: ValueError.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from skimage.restoration import inpaint_biharmonic

__all__ = ["biharmonic_fill", "exemplar_fill", "harmonic_fill", "mean_fill", "ns_fill",
           "telea_fill", "MissingExtraError", "opencv"]

#: what to install for the OpenCV baselines
EVAL_EXTRA = "pip install 'deepfill-nnlite[eval]' (opencv-contrib-python-headless)"


class MissingExtraError(RuntimeError):
    """An optional dependency is not installed; the message names the extra to install."""


def _check(image, mask) -> tuple[np.ndarray, np.ndarray]:
    """-> image float64 (C, H, W), hole bool (H, W); clear errors for bad shapes / empty known."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != image.shape[1:]:
        raise ValueError(f"mask must be (1, H, W) or (H, W) with (H, W) = {image.shape[1:]}, "
                         f"got shape {np.shape(mask)}")
    hole = mask > 0.5
    if hole.all():
        raise ValueError("the mask covers the whole image: there are no known pixels to fill from")
    return image, hole


def _paste(image: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Known pixels from ``image``, hole pixels from ``fill``; float32 clipped to [-1, 1]."""
    out = np.where(hole[None], fill, image)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def mean_fill(image, mask) -> np.ndarray:
    """Fill the hole with the per-channel mean of the known pixels: (3, H, W) float32."""
    image, hole = _check(image, mask)
    colour = image[:, ~hole].mean(axis=1)
    return _paste(image, np.broadcast_to(colour[:, None, None], image.shape), hole)


def harmonic_fill(image, mask) -> np.ndarray:
    """Fill the hole by discrete harmonic (diffusion) interpolation: (3, H, W) float32.

    For each hole pixel p with in-image 4-neighbours N(p):
    ``|N(p)| u_p - sum_{q in N(p), q in hole} u_q = sum_{q in N(p), q known} x_q``
    (Neumann at the image border: missing neighbours are simply left out).
    """
    image, hole = _check(image, mask)
    height, width = hole.shape
    ys, xs = np.nonzero(hole)
    unknowns = len(ys)
    if unknowns == 0:
        return image.astype(np.float32)
    number = np.full(hole.shape, -1, np.int64)
    number[ys, xs] = np.arange(unknowns)
    degree = np.zeros(unknowns)
    rhs = np.zeros((unknowns, image.shape[0]))
    rows, cols = [], []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        degree += inside
        p, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        in_hole = hole[ny, nx]
        rows.append(p[in_hole])
        cols.append(number[ny[in_hole], nx[in_hole]])
        np.add.at(rhs, p[~in_hole], image[:, ny[~in_hole], nx[~in_hole]].T)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    laplacian = scipy.sparse.csc_matrix(
        (np.concatenate([degree, -np.ones(len(rows))]),
         (np.concatenate([np.arange(unknowns), rows]), np.concatenate([np.arange(unknowns), cols]))),
        shape=(unknowns, unknowns))
    solution = scipy.sparse.linalg.splu(laplacian).solve(rhs)
    fill = image.copy()
    fill[:, ys, xs] = solution.T
    return _paste(image, fill, hole)


def biharmonic_fill(image, mask) -> np.ndarray:
    """Fill the hole with scikit-image's biharmonic inpainting: (3, H, W) float32."""
    image, hole = _check(image, mask)
    filled = inpaint_biharmonic(image.transpose(1, 2, 0), hole, channel_axis=-1)
    return _paste(image, filled.transpose(2, 0, 1), hole)


# ------------------------------------------------------------------ OpenCV baselines
def opencv():
    """The ``cv2`` module with its contrib ``xphoto`` part, or MissingExtraError."""
    try:
        import cv2
        cv2.xphoto.inpaint                          # noqa: B018 - the contrib build has it
    except (ImportError, AttributeError):
        raise MissingExtraError(f"the OpenCV baselines (telea, ns, exemplar) need OpenCV with "
                                f"its contrib modules: {EVAL_EXTRA}") from None
    return cv2


def _to_pixels(image):
    """float (3, H, W) in [-1, 1] -> contiguous (H, W, 3) uint8, rounded to nearest."""
    pixels = np.clip(np.rint((image + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def _from_pixels(pixels):
    return pixels.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1.0


def _cv_inpaint(image, mask, method, radius):
    cv2 = opencv()
    image, hole = _check(image, mask)
    flags = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    filled = cv2.inpaint(_to_pixels(image), hole.astype(np.uint8), radius, flags)
    return _paste(image, _from_pixels(filled), hole)


def telea_fill(image, mask, radius=3) -> np.ndarray:
    """Fill the hole with ``cv2.inpaint(..., INPAINT_TELEA)``: (3, H, W) float32."""
    return _cv_inpaint(image, mask, "telea", radius)


def ns_fill(image, mask, radius=3) -> np.ndarray:
    """Fill the hole with ``cv2.inpaint(..., INPAINT_NS)`` (Navier-Stokes): (3, H, W) float32."""
    return _cv_inpaint(image, mask, "ns", radius)


def exemplar_fill(image, mask) -> np.ndarray:
    """Fill the hole with ``cv2.xphoto.inpaint(..., INPAINT_SHIFTMAP)`` in CIELab (its mask is
    1 = known, the opposite of ours): (3, H, W) float32."""
    cv2 = opencv()
    image, hole = _check(image, mask)
    lab = cv2.cvtColor(_to_pixels(image), cv2.COLOR_RGB2Lab)
    filled = np.zeros_like(lab)
    cv2.xphoto.inpaint(lab, (~hole).astype(np.uint8), filled, cv2.xphoto.INPAINT_SHIFTMAP)
    return _paste(image, _from_pixels(cv2.cvtColor(filled, cv2.COLOR_Lab2RGB)), hole)
