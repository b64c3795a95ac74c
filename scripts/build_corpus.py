"""Build the training / validation corpus from packages a Debian machine can install.

    python scripts/build_corpus.py --out ~/deepfill-corpus            # download + build
    python scripts/build_corpus.py --out ~/deepfill-corpus --debs DIR # use .deb files in DIR
    python scripts/build_corpus.py --verify ~/deepfill-corpus         # check every sha256
    python scripts/build_corpus.py --flist ~/deepfill-corpus          # (re)write train_mix.flist

What it does, step by step (every choice is recorded in ``manifest.json``):

1. ``apt-get download`` each package of ``PACKAGES`` into a cache folder (no root needed,
   nothing is installed) and unpacks it with ``dpkg-deb -x``.
2. Collects the images: wallpapers and artwork as *photos*; the game texture packs (zip
   archives ``*.pk3``) and GIMP's tileable patterns (``*.pat``) as *textures*; plus the
   photographs bundled inside the scikit-image wheel. In packages where photographs sit among
   renders and screenshots (``PHOTOS_ONLY``) only the listed photographs are read.
3. Drops what is not an image to learn from: normal/specular/glow maps, decals with
   transparency, tiny images, flat images; of several renderings of one picture (sizes,
   light/dark variants, one theme's screens) it keeps the largest, and of near-duplicate
   photos (average hashes within ``NEAR_DUPLICATE_BITS``) the first.
4. Splits by *group* (a photo and its variants, a texture folder of one game set) so that
   near-duplicates never straddle train and validation: a group goes to ``val`` when the
   first 8 hex digits of sha256(group name) mod 100 fall below the validation percentage.
   scikit-image's photos always go to ``train`` (the project's earlier demo model trained on
   them, so they could not measure it fairly). Paths of Plasma artwork are skipped.
5. Writes RGB PNGs (photos: shorter side at most 1024 pixels; textures: longer side at most
   1024) to ``OUT/{train,val}/{photos,textures}/`` and ``OUT/manifest.json`` with, for every
   image, its source package and version, original path, licence(s), group, split, size and
   the sha256 of the file and of its decoded pixels (the pixel hash does not depend on the
   PNG encoder's version).
6. Writes ``OUT/train_mix.flist``, the training list: every training texture once and every
   training photo repeated so that photos make up ``PHOTO_SHARE`` of the list (there are
   thousands of textures and a few dozen photos; multi-scale crops make the repeats differ).

Never used here (they are the project's external test set): images shipped with matplotlib
or scikit-learn, OpenCV's sample data, and the Plasma, MATE and Lomiri wallpaper packages.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

#: package -> kind of its images. Wallpaper/artwork packages give "photo" images.
PACKAGES = {
    "ukui-wallpapers": "photo",
    "gnome-backgrounds": "photo",
    "sway-backgrounds": "photo",
    "desktop-base": "photo",
    "debian-edu-artwork-emerald": "photo",
    "xplanet-images": "photo",
    "lxqt-themes": "photo",
    "hugin-data": "photo",
    "kodi-data": "photo",
    "libjxl-testdata": "photo",
    "gimp-data": "texture",
    "ufoai-textures": "texture",
    "nexuiz-textures": "texture",
    "openarena-081-textures": "texture",
}
EXCLUDED_PACKAGES = ("plasma", "mate", "lomiri", "matplotlib", "scikit-learn", "sklearn", "opencv")
VAL_PERCENT = {"photo": 25, "texture": 10}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tga", ".pat")
#: texture maps that are not pictures (normal, specular, gloss, glow, height, colour masks)
NOT_A_PICTURE = re.compile(r"(_nm|_norm|normal|_bump|_gloss|_sm|_spec|_glow|_local|_height|"
                           r"_luma|_shirt|_pants|_reflect|_alpha|_mask|_fx|_blend|_add)"
                           r"(_?\d*)$", re.IGNORECASE)
#: packages whose photographs sit among drawings, renders and screenshots: only the files
#: whose path matches are read (chosen by looking at every candidate of 256+ pixels), and each
#: file is a picture of its own (no size/light-dark variants) though a series shares a group.
PHOTOS_ONLY = {
    "lxqt-themes": r"^usr/share/lxqt/wallpapers/(Butterfly-Kenneth-Wimer|Valendas|after-the-rain|"
                   r"appleflower|beam|butterfly|cloud|drop|flowers|fog)\.(png|jpg)$",
    "hugin-data": r"^usr/share/hugin/xrc/data/help_en_EN/(800px-C_Marchi-GrandCentral-adj|"
                  r"AliasingPScubic_2x|Big_ben_rectilinear|CA_fringes0[01]|CA_strange0[12]|"
                  r"CA_tCA0[0-3])\.jpg$",
    "kodi-data": r"^usr/share/kodi/addons/skin\.estuary/extras/home-images/(movie|music)\.jpg$",
    "libjxl-testdata": r"^usr/share/libjxl-testdata/(jxl/hdr_room\.png|jxl/flower/flower\.png|"
                       r"external/wesaturate/500px/\w+_srgb8\.png)$",
}
#: a series of one scene (crops, exposures) in a PHOTOS_ONLY package: one group, one split
SERIES = {"hugin-data": r"^(aliasing|ca_fringes|ca_strange|ca_tca)"}
NEAR_DUPLICATE_BITS = 16   # of 256 average-hash bits: closer photos are one picture
MIN_SIDE = {"photo": 256, "texture": 128}
MIN_STD = 6.0              # gray levels: flatter images teach nothing
PHOTO_SHORT_SIDE = 1024
TEXTURE_LONG_SIDE = 1024
PHOTO_SHARE = 0.4
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins",
                  "colorwheel", "grass", "gravel", "hubble_deep_field", "immunohistochemistry",
                  "moon", "motorcycle", "page", "retina", "rocket", "text")


def download(packages, cache: Path) -> dict[str, Path]:
    """``apt-get download`` the packages missing from ``cache``; returns package -> .deb."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(cache.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=cache, check=True)
    debs = {}
    for package in packages:
        found = sorted(cache.glob(f"{package}_*.deb"))
        if not found:
            raise SystemExit(f"build_corpus: no .deb for {package!r} in {cache}")
        debs[package] = found[-1]
    return debs


def unpack(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    return into


def licences(root: Path, package: str) -> list[str]:
    """The ``License:`` names of the package's Debian copyright file (or its licence lines)."""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    if not copyright_file.exists():
        return ["unknown (no copyright file)"]
    text = copyright_file.read_text(errors="replace")
    names = sorted({m.strip() for m in re.findall(r"^License:\s*(.+)$", text, re.M)})
    if names:
        return names
    lines = [l.strip() for l in text.splitlines() if re.search(r"licen[cs]e|GPL|public domain", l, re.I)]
    return lines[:3] or ["see the package's copyright file"]


def read_pat(data: bytes) -> Image.Image:
    """A GIMP pattern (.pat): big-endian header (size, version, width, height, bytes per
    pixel, b'GPAT', name), then the raw pixels."""
    header_size, _, width, height, depth = np.frombuffer(data[:20], ">u4")
    if data[20:24] != b"GPAT" or depth not in (1, 2, 3, 4):
        raise ValueError("not a GIMP pattern")
    pixels = np.frombuffer(data[header_size:header_size + width * height * depth], np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[int(depth)]
    return Image.fromarray(pixels.reshape(height, width, depth).squeeze(), mode)


def open_image(name: str, data: bytes) -> Image.Image:
    if name.lower().endswith(".pat"):
        return read_pat(data)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def candidates(package: str, root: Path):
    """(original path, bytes) of every image file of an unpacked package, pk3 archives opened."""
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix.lower() == ".pk3":
            with zipfile.ZipFile(path) as archive:
                for member in sorted(archive.namelist()):
                    if member.lower().endswith(IMAGE_SUFFIXES):
                        yield f"{path.relative_to(root)}!{member}", archive.read(member)
        elif path.suffix.lower() in IMAGE_SUFFIXES and not re.search(r"/icons/|plasma", str(path)):
            if package in PHOTOS_ONLY and not re.search(PHOTOS_ONLY[package],
                                                        str(path.relative_to(root))):
                continue
            if package == "gimp-data" and path.suffix.lower() != ".pat":
                continue            # gimp-data's PNGs are brushes and UI pictures
            yield str(path.relative_to(root)), path.read_bytes()


def group_of(package: str, original: str) -> str:
    """Near-duplicates share a group: one picture at several sizes or light/dark, one theme,
    one texture folder of a game set."""
    name = Path(original.split("!")[-1])
    if "!" in original or package == "gimp-data":
        return f"{package}:{name.parent}"
    stem = name.stem.lower()
    series = re.match(SERIES[package], stem) if package in SERIES else None
    if series:
        return f"{package}:{series.group(1)}"
    stem = re.sub(r"[_-]?\d{3,4}x\d{3,4}([_-]?portrait)?", "", stem)
    stem = re.sub(r"-(l|d)$", "", stem)
    theme = re.search(r"/([a-z0-9-]+)-theme/", original)
    if theme:
        return f"{package}:{theme.group(1)}"
    return f"{package}:{stem}"


def variant_key(package: str, original: str, group: str) -> str:
    """Photos with one key are renderings of one picture: only the largest is kept. In a
    PHOTOS_ONLY package every file is its own picture (a series only shares the split)."""
    return f"{package}:{original}" if package in PHOTOS_ONLY else group


def average_hash(image: Image.Image) -> np.ndarray:
    """256 bits: the 16 x 16 gray thumbnail above its mean (same for sizes and re-encodings)."""
    small = np.asarray(image.convert("L").resize((16, 16), Image.BILINEAR), np.float32)
    return (small > small.mean()).ravel()


def drop_near_duplicates(photos):
    """Of photos (in order) whose average hashes differ in at most NEAR_DUPLICATE_BITS bits,
    keep the first; returns (kept, dropped)."""
    kept, dropped, hashes = [], [], []
    for photo in photos:
        bits = average_hash(photo[-1])
        if any(int((bits != other).sum()) <= NEAR_DUPLICATE_BITS for other in hashes):
            dropped.append(photo)
        else:
            kept.append(photo)
            hashes.append(bits)
    return kept, dropped


def is_picture(package: str, kind: str, original: str, image: Image.Image) -> str | None:
    """None if the image is kept, else why not."""
    stem = Path(original.split("!")[-1]).stem
    if kind == "texture" and NOT_A_PICTURE.search(stem):
        return "a texture map, not a picture"
    if min(image.size) < MIN_SIDE[kind]:
        return "too small"
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if (alpha < 250).mean() > 0.02:
            return "transparent (a decal)"
    gray = np.asarray(image.convert("L"), np.float32)
    if gray.std() < MIN_STD:
        return "flat"
    return None


def to_rgb(image: Image.Image, kind: str) -> Image.Image:
    image = image.convert("RGB")
    width, height = image.size
    if kind == "photo" and min(width, height) > PHOTO_SHORT_SIDE:
        scale = PHOTO_SHORT_SIDE / min(width, height)
    elif kind == "texture" and max(width, height) > TEXTURE_LONG_SIDE:
        scale = TEXTURE_LONG_SIDE / max(width, height)
    else:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.LANCZOS)


def split_of(group: str, kind: str) -> str:
    if group.startswith("scikit-image:"):
        return "train"          # the earlier demo model trained on these: never validate on them
    return "val" if int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100 < VAL_PERCENT[kind] \
        else "train"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120]


def write_png(image: Image.Image, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(data)
    os.replace(handle.name, path)
    return hashlib.sha256(data).hexdigest()


def pixels_sha256(image: Image.Image) -> str:
    array = np.ascontiguousarray(np.asarray(image, np.uint8))
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()


def skimage_images():
    import skimage
    import skimage.data

    for name in SKIMAGE_PHOTOS:
        pixels = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
        yield name, Image.fromarray(pixels), skimage.__version__


def _write(out: Path, package: str, kind: str, original: str, group: str, image) -> dict:
    split = split_of(group, kind)
    rgb = to_rgb(image, kind)
    tail = "/".join(original.split("!")[-1].split("/")[-2:])     # folder/file: readable, short
    digest = hashlib.sha256(original.encode()).hexdigest()[:8]   # unique: names can collide
    relative = Path(split) / f"{kind}s" / f"{safe_name(package)}__{safe_name(tail)}_{digest}.png"
    file_sha = write_png(rgb, out / relative)
    return {"path": str(relative), "sha256": file_sha, "pixels_sha256": pixels_sha256(rgb),
            "source": package, "original": original, "group": group, "kind": kind,
            "split": split, "size": list(rgb.size)}


def build(out: Path, debs_dir: Path, work: Path) -> dict:
    if any(bad in p for p in PACKAGES for bad in EXCLUDED_PACKAGES):
        raise SystemExit("build_corpus: an external-test-set package is in PACKAGES")
    debs = download(PACKAGES, debs_dir)
    entries, sources, best = [], {}, {}
    for package, kind in PACKAGES.items():
        deb = debs[package]
        root = unpack(deb, work / package)
        version = deb.name.split("_")[1]
        sources[package] = {"version": version, "deb": deb.name,
                            "deb_sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
                            "licences": licences(root, package), "kind": kind}
        kept = skipped = 0
        for original, data in candidates(package, root):
            try:
                image = open_image(original, data)
            except Exception:                  # not decodable by Pillow: not for us
                skipped += 1
                continue
            if is_picture(package, kind, original, image) is not None:
                skipped += 1
                continue
            group = group_of(package, original)
            kept += 1
            if kind == "texture":          # no variants to choose from: write it now
                entries.append(_write(out, package, kind, original, group, image))
                continue
            pixels = image.size[0] * image.size[1]
            key = variant_key(package, original, group)
            if key not in best or best[key][0] < pixels:
                best[key] = (pixels, package, kind, original, group, image)
        print(f"{package} {version}: {kept} kept, {skipped} skipped", file=sys.stderr)
    for name, image, version in skimage_images():
        group = f"scikit-image:{name}"
        best[group] = (0, "scikit-image", "photo", f"skimage.data.{name}", group, image)
        sources["scikit-image"] = {"version": version, "licences": [
            "scikit-image sample data (public domain / CC0 / BSD; see skimage/data/README.txt)"],
            "kind": "photo"}
    photos, dropped = drop_near_duplicates(list(best.values()))
    for _, package, _, original, _, _ in dropped:
        print(f"near-duplicate dropped: {package} {original}", file=sys.stderr)
    for _, package, kind, original, group, image in photos:
        entries.append(_write(out, package, kind, original, group, image))
    entries.sort(key=lambda e: e["path"])
    manifest = {"format": 1, "built_by": "scripts/build_corpus.py", "val_percent": VAL_PERCENT,
                "photo_short_side_max": PHOTO_SHORT_SIDE, "texture_long_side_max": TEXTURE_LONG_SIDE,
                "sources": sources, "images": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for split in ("train", "val"):
        for kind in ("photo", "texture"):
            n = sum(e["split"] == split and e["kind"] == kind for e in entries)
            print(f"{split}/{kind}s: {n}", file=sys.stderr)
    return manifest


def write_training_flist(out: Path, photo_share: float = PHOTO_SHARE) -> Path:
    """``OUT/train_mix.flist`` from the manifest: textures once, photos repeated to
    ``photo_share`` of the lines (relative paths, so the corpus folder can move)."""
    manifest = json.loads((out / "manifest.json").read_text())
    train = [e for e in manifest["images"] if e["split"] == "train"]
    photos = [e["path"] for e in train if e["kind"] == "photo"]
    textures = [e["path"] for e in train if e["kind"] == "texture"]
    repeat = max(1, round(photo_share / (1 - photo_share) * len(textures) / max(1, len(photos))))
    lines = [f"# {len(photos)} training photos x {repeat} + {len(textures)} training textures "
             f"(scripts/build_corpus.py; manifest sha256 "
             f"{hashlib.sha256((out / 'manifest.json').read_bytes()).hexdigest()})"]
    lines += [path for path in photos for _ in range(repeat)] + textures
    target = out / "train_mix.flist"
    target.write_text("\n".join(lines) + "\n")
    print(f"{target}: {len(photos)} photos x {repeat} + {len(textures)} textures", file=sys.stderr)
    return target


def verify(out: Path) -> int:
    """Check that every file of the manifest exists with its sha256; returns the mismatches."""
    manifest = json.loads((out / "manifest.json").read_text())
    paths = [entry["path"] for entry in manifest["images"]]
    bad = len(paths) - len(set(paths))
    if bad:
        print(f"{bad} paths are listed twice", file=sys.stderr)
    for entry in manifest["images"]:
        path = out / entry["path"]
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            if not path.exists() or pixels_sha256(Image.open(path)) != entry["pixels_sha256"]:
                print(f"mismatch: {entry['path']}", file=sys.stderr)
                bad += 1
    print(f"{len(manifest['images']) - bad} of {len(manifest['images'])} images verified",
          file=sys.stderr)
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="corpus folder to write (created)")
    parser.add_argument("--debs", type=Path, default=None,
                        help="folder of downloaded .deb files (default: OUT/.debs)")
    parser.add_argument("--verify", type=Path, metavar="CORPUS",
                        help="check an existing corpus against its manifest instead")
    parser.add_argument("--flist", type=Path, metavar="CORPUS",
                        help="only (re)write CORPUS/train_mix.flist from its manifest")
    args = parser.parse_args(argv)
    if args.verify:
        return 1 if verify(args.verify) else 0
    if args.flist:
        write_training_flist(args.flist)
        return 0
    if args.out is None:
        parser.error("give --out (or --verify)")
    with tempfile.TemporaryDirectory() as work:
        build(args.out, args.debs or args.out / ".debs", Path(work))
    write_training_flist(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
