"""Shape arithmetic of convolutions, in one place: plain Python, no arrays, on nnlite's
lowest floor so that ``kernels/`` and ``functional/`` both read it.

Notation (used by every conv file)::

    N  batch            C  input channels       O  output channels
    H, W    input height/width            OH, OW  output height/width
    KH, KW  kernel size                   SH, SW  stride
    DH, DW  dilation                      PT, PB, PL, PR  padding top/bottom/left/right
    PH, PW  symmetric padding: PT = PB = PH, PL = PR = PW (``padding=(PH, PW)`` or an int)

    effective kernel   EKH = DH * (KH - 1) + 1
    output size        OH  = (H + PT + PB - EKH) // SH + 1          (same for W)

TensorFlow SAME (``padding="same"``, spec §1)::

    OH    = ceil(H / SH)
    total = max((OH - 1) * SH + EKH - H, 0)
    PT    = total // 2,  PB = total - PT        (the odd pixel goes to the bottom/right)

so a stride-2 3x3 conv on an even size pads 0 before and 1 after.

Transposed convolution (the adjoint, ``conv_transpose2d``) inverts the output size::

    H = (OH - 1) * SH - PT - PB + EKH + output_padding,     0 <= output_padding < max(SH, DH)

as PyTorch allows. Rows of H that no tap reaches (an ``output_padding`` beyond the bottom
padding PB, possible once it reaches the stride) are zeros plus the bias.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["ConvGeometry", "pair", "same_padding", "parse_padding", "conv_output_size",
           "conv_geometry", "transposed_input_size", "split_output_padding"]


class ConvGeometry(NamedTuple):
    """Everything a conv needs besides its arrays (see the notation above)."""
    KH: int
    KW: int
    SH: int
    SW: int
    DH: int
    DW: int
    PT: int
    PB: int
    PL: int
    PR: int
    H: int
    W: int
    OH: int
    OW: int


def pair(value, name, minimum=1):
    """An int or a pair of ints -> (a, b), validated >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {value!r}")
        a, b = value
    else:
        a = b = value
    if int(a) != a or int(b) != b or a < minimum or b < minimum:
        wanted = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(a), int(b)


def same_padding(size, kernel, stride, dilation):
    """TensorFlow SAME padding (before, after) for one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def parse_padding(padding, H, W, KH, KW, SH, SW, DH, DW):
    """``padding`` as (PT, PB, PL, PR): an int, (PH, PW), (PT, PB, PL, PR) or "same"."""
    if isinstance(padding, str):
        if padding.lower() != "same":
            raise ValueError(f"padding string must be 'same' (TensorFlow SAME), got {padding!r}")
        return same_padding(H, KH, SH, DH) + same_padding(W, KW, SW, DW)
    if isinstance(padding, (tuple, list)):
        if len(padding) == 2:
            pads = (padding[0], padding[0], padding[1], padding[1])
        elif len(padding) == 4:
            pads = tuple(padding)
        else:
            raise ValueError(f"padding must be an int, (ph, pw), (top, bottom, left, right) or "
                             f"'same', got {padding!r}")
    else:
        pads = (padding,) * 4
    if any(int(p) != p or p < 0 for p in pads):
        raise ValueError(f"padding must be non-negative integers, got {padding!r}")
    return tuple(int(p) for p in pads)


def conv_output_size(size, kernel, stride, pad_before, pad_after, dilation, axis="H",
                     op="conv2d"):
    """OH = (H + PT + PB - (DH*(KH-1)+1)) // SH + 1, with an error that shows the numbers."""
    if size < 1:
        raise ValueError(f"{op}: input size along {axis} is {size}; it must be >= 1")
    effective = dilation * (kernel - 1) + 1
    padded = size + pad_before + pad_after
    if padded < effective:
        raise ValueError(
            f"{op}: the dilated kernel ({effective} = {dilation}*({kernel}-1)+1) is larger than "
            f"the padded input along {axis} ({padded} = {size} + {pad_before} + {pad_after}); "
            f"O{axis} = ({size} + {pad_before} + {pad_after} - {effective}) // {stride} + 1 "
            "would be < 1")
    return (padded - effective) // stride + 1


def conv_geometry(input_shape, weight_shape, stride, padding, dilation, op="conv2d"):
    """Validate a conv's arguments and return its ``ConvGeometry``.

    ``input_shape`` is (N, C, H, W); ``weight_shape`` (O, C, KH, KW) for conv2d.
    """
    if len(input_shape) != 4:
        raise ValueError(f"{op}: input must be (N, C, H, W), got shape {tuple(input_shape)}")
    if len(weight_shape) != 4:
        raise ValueError(f"{op}: weight must be 4-d, got shape {tuple(weight_shape)}")
    _, _, H, W = input_shape
    _, _, KH, KW = weight_shape
    SH, SW = pair(stride, "stride")
    DH, DW = pair(dilation, "dilation")
    PT, PB, PL, PR = parse_padding(padding, H, W, KH, KW, SH, SW, DH, DW)
    OH = conv_output_size(H, KH, SH, PT, PB, DH, "H", op)
    OW = conv_output_size(W, KW, SW, PL, PR, DW, "W", op)
    return ConvGeometry(KH, KW, SH, SW, DH, DW, PT, PB, PL, PR, H, W, OH, OW)


def transposed_input_size(out_size, kernel, stride, pad_before, pad_after, dilation,
                          output_padding, axis="H"):
    """Size produced by a transposed conv (the conv's input size it is the adjoint for)::

        H = (OH - 1) * SH - PT - PB + DH * (KH - 1) + 1 + output_padding
    """
    if output_padding < 0 or output_padding >= max(stride, dilation):
        raise ValueError(f"conv_transpose2d: output_padding ({output_padding}) must be smaller "
                         f"than the stride ({stride}) or the dilation ({dilation}) along {axis}")
    size = (out_size - 1) * stride - pad_before - pad_after + dilation * (kernel - 1) + 1 \
        + output_padding
    if size < 1:
        raise ValueError(
            f"conv_transpose2d: output size along {axis} would be {size} = ({out_size} - 1) * "
            f"{stride} - {pad_before} - {pad_after} + {dilation} * ({kernel} - 1) + 1 + "
            f"{output_padding}; it must be >= 1")
    return size


def split_output_padding(output_padding, stride, pad_after):
    """One axis of a transposed conv whose ``output_padding`` reaches the stride, written as
    an ordinary one: ``(pad_after', output_padding', zeros)``.

    The output is the scatter's rows from -PT on, cut to H rows; ``output_padding`` only moves
    that cut. Moving it by up to PB rows is the same as a smaller bottom padding
    ``PB - output_padding``; beyond PB the cut may move by up to ``stride - 1`` more rows
    (which the floor of the conv's size formula absorbs), and any rows left over lie past
    every tap: ``zeros`` rows appended afterwards.
    """
    if output_padding < stride:
        return pad_after, output_padding, 0
    if output_padding <= pad_after:
        return pad_after - output_padding, 0, 0
    beyond = output_padding - pad_after
    kept = min(beyond, stride - 1)
    return 0, kept, beyond - kept
