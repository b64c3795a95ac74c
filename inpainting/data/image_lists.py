"""Which files are training images: every image under a folder (recursive, sorted by path) or
every path of an flist text file (one per line; blank lines and ``#`` comments ignored,
relative paths taken from the flist's folder). A file that cannot be an flist (an image, a
binary file) is refused with what it is."""
from __future__ import annotations

import codecs
import os
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_flist"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")


def read_flist(flist: str | os.PathLike) -> list[Path]:
    """Paths listed in an flist file: one per line; blank lines and ``#`` comments ignored.

    Relative paths are taken relative to the flist's own folder. An image file or any other
    binary file raises ValueError saying so (it is not a list of paths).
    """
    flist = Path(flist)
    base = flist.parent
    with open(flist, "rb") as handle:
        head = handle.read(4096)
    kind = _binary_kind(flist, head)
    if not kind:
        try:
            text = flist.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            kind = f"a file that is not UTF-8 text (byte {error.object[error.start]:#04x} at " \
                   f"offset {error.start})"
    if kind:
        raise ValueError(f"{flist} is {kind}, not a folder or an flist (a text file of image "
                         "paths, one per line)")
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        paths.append(path if path.is_absolute() else base / path)
    return paths


# Leading bytes of the binary image formats Pillow reads most often.
_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*",
                     b"RIFF")


def _binary_kind(path: Path, head: bytes) -> str:
    """What a file starting with ``head`` is when it cannot be an flist ('an image file',
    'a binary file', ...); '' when it may be one."""
    image_suffix = path.suffix.lower() in IMAGE_EXTENSIONS
    if b"\x00" in head:
        reason = "a binary file"
    else:
        try:   # incremental: a character cut at the end of ``head`` is not an error
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            return "an image file" if image_suffix else ""
        except UnicodeDecodeError as error:
            reason = (f"a file that is not UTF-8 text (byte {head[error.start]:#04x} at offset "
                      f"{error.start})")
    return "an image file" if image_suffix or head.startswith(_IMAGE_SIGNATURES) else reason


def list_images(root_or_flist: str | os.PathLike) -> list[Path]:
    """The image paths of a folder (recursive, by extension, sorted) or of an flist file."""
    source = Path(root_or_flist)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*")
                       if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        where = f"folder {str(source)!r} (searched recursively for {', '.join(IMAGE_EXTENSIONS)})"
    elif source.is_file():
        paths = read_flist(source)
        where = f"file list {str(source)!r}"
    else:
        raise FileNotFoundError(f"image source {str(source)!r} is neither a folder nor an flist file")
    if not paths:
        raise ValueError(f"no images found in {where}")
    return paths
