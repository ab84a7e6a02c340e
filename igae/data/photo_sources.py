"""Where the real photos come from: a registry of sources that ship in packages.

The paper's real-image loss uses an ImageNet subset. Offline we cannot download one,
so we gather the colour photographs that ship inside installed wheels and Debian
packages, each with its licence and credit, and let a user add their own folder
(e.g. an ImageNet subset). Every source returns a list of :class:`Photo`; nothing is
decoded until a photo is opened.

Sources (names used in ``photos.sources``):

* ``skimage``          colour photos in scikit-image's wheel (no pooch download)
* ``sklearn``          the two images behind ``sklearn.datasets.load_sample_images()``
* ``matplotlib``       ``grace_hopper.jpg`` from matplotlib's sample data
* ``opencv-doc``       curated photos from Debian ``opencv-doc`` examples/data
* ``mate-backgrounds`` the nature photos of Debian ``mate-backgrounds``
* ``folder``           every .jpg/.jpeg/.png under a user folder, recursively
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from igae.errors import InputError, OfflineError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Photo:
    """One real photograph and where it came from.

    Attributes:
        photo_id: unique, filename-safe id, prefixed with the source name.
        path_or_loader: an image file, or a callable returning ``(H, W, 3)`` uint8 RGB.
        source: registry name of the source (``"skimage"``, ...).
        title: short human description.
        licence: licence as stated by the shipping package.
        credit: photographer / copyright holder as stated by the shipping package.
        origin: where the file lies, relative to its package or folder ("" for loaders).
    """

    photo_id: str
    path_or_loader: Path | Callable[[], np.ndarray]
    source: str
    title: str
    licence: str
    credit: str
    origin: str = ""

    def open(self, min_short_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
        """Decode the photo as an RGB PIL image, reduced while decoding where that is free.

        Args:
            min_short_side: if given, JPEGs are decoded at the smallest DCT scale
                (1/2, 1/4, 1/8) whose short side is still >= this; decoding a
                2560x1600 JPEG at 1/8 is ~20x faster and is an area-like downscale.

        Returns:
            ``(image, (W, H))``: the decoded RGB image (possibly smaller than the
            file) and the full size of the file in pixels, so crop boxes can be given
            in source pixels and mapped onto the decoded image.

        Raises:
            InputError: the file cannot be read or decoded (names the file).
        """
        if callable(self.path_or_loader):
            arr = _check_rgb(np.asarray(self.path_or_loader()), self.photo_id)
            im = Image.fromarray(arr, mode="RGB")
            return im, im.size
        path = Path(self.path_or_loader)
        try:
            im = Image.open(path)
            full = im.size
            if min_short_side is not None and im.format == "JPEG":
                scale = min_short_side / min(full)
                if scale < 1.0:
                    im.draft("RGB", (int(np.ceil(full[0] * scale)), int(np.ceil(full[1] * scale))))
            # Palette/gray/CMYK/alpha all become plain RGB; alpha is dropped, not blended,
            # because the photos here are opaque except for feathered borders.
            im = im.convert("RGB")
            im.load()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(f"cannot decode photo ({type(exc).__name__}: {exc})", path=path) from exc
        return im, full

    def load(self) -> np.ndarray:
        """The full-resolution photo as ``(H, W, 3)`` uint8 RGB."""
        im, _ = self.open()
        return np.asarray(im, dtype=np.uint8)


def _check_rgb(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError(f"photo loader for {what!r} must return (H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def _safe_id(text: str) -> str:
    """Filename-safe id: letters, digits and '-' kept, runs of anything else -> '_'."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", text).strip("_")


def _drop_hint(source: str) -> str:
    return f"Remove {source!r} from photos.sources in params to build without it."


# --------------------------------------------------------------------------- wheels


def _package_dir(module: str, source: str) -> Path:
    """Folder of an installed package, found without importing it (sklearn takes ~1 s)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise OfflineError(f"photo source {source!r} needs the Python package {module!r}, which is not installed. "
                           + _drop_hint(source))
    return Path(list(spec.submodule_search_locations)[0])


def _files_photos(source: str, root: Path, entries: list[tuple[str, str, str, str]], origin_root: Path) -> list[Photo]:
    """Photos for ``(relpath, title, licence, credit)`` entries under ``root``; all must exist."""
    photos = []
    for rel, title, licence, credit in entries:
        path = root / rel
        if not path.is_file():
            raise OfflineError(f"photo source {source!r}: expected file {path} is missing "
                               f"(a different package version?). " + _drop_hint(source))
        photos.append(Photo(
            photo_id=f"{source}-{_safe_id(Path(rel).stem)}", path_or_loader=path, source=source,
            title=title, licence=licence, credit=credit, origin=str(path.relative_to(origin_root)),
        ))
    return photos


# Colour natural photographs in scikit-image's wheel; licences/credits from the
# docstrings of skimage.data.<name>. Left out: grayscale (camera, coins, moon, ...),
# microscopy/medical (ihc, cell, retina), synthetic (color, phantom, logo, horse,
# chessboard), astronomy (hubble_deep_field), the motorcycle stereo pair (scikit-image
# states no licence for it), and everything that skimage.data fetches with pooch.
_SKIMAGE = [
    ("astronaut.png", "Astronaut Eileen Collins (skimage.data.astronaut)", "public domain",
     "NASA (NASA Great Images database, https://flic.kr/p/r9qvLn)"),
    ("chelsea.png", "Chelsea the cat (skimage.data.chelsea)", "CC0", "Stefan van der Walt"),
    ("coffee.png", "Coffee cup (skimage.data.coffee)", "CC0",
     "Rachel Michetti; courtesy of Pikolo Espresso Bar"),
    ("rocket.jpg", "Falcon 9 launch with DSCOVR (skimage.data.rocket)", "public domain",
     "SpaceX (https://www.flickr.com/photos/spacexphotos/16511594820/)"),
]


def skimage_photos(cache_dir: Path, folder: Path | None = None) -> list[Photo]:
    """scikit-image's bundled colour photos (files in ``skimage/data``; no download)."""
    pkg = _package_dir("skimage", "skimage")
    return _files_photos("skimage", pkg / "data", _SKIMAGE, pkg.parent)


def sklearn_photos(cache_dir: Path, folder: Path | None = None) -> list[Photo]:
    """The files ``sklearn.datasets.load_sample_images()`` reads (credits: images/README.txt)."""
    pkg = _package_dir("sklearn", "sklearn")
    licence = "CC-BY-2.0"
    entries = [
        ("china.jpg", "Chinese temple (load_sample_images: china)", licence,
         "danielbuechele (https://www.flickr.com/photos/danielbuechele/6061409035/); retrieved by Robert Layton"),
        # The package README credits danielbuechele for flower.jpg too, but its own
        # source link points to the Flickr user vultilion: we credit the linked page.
        ("flower.jpg", "Flower (load_sample_images: flower)", licence,
         "vultilion (https://www.flickr.com/photos/vultilion/6056698931/); retrieved by Robert Layton"),
    ]
    return _files_photos("sklearn", pkg / "datasets" / "images", entries, pkg.parent)


def matplotlib_photos(cache_dir: Path, folder: Path | None = None) -> list[Photo]:
    """``grace_hopper.jpg`` from matplotlib's sample data (the only colour photo there).

    The other sample images are a 128 px icon and the logo.
    """
    try:
        from matplotlib import cbook
    except ImportError as exc:
        raise OfflineError("photo source 'matplotlib' needs matplotlib, which is not installed. "
                           + _drop_hint("matplotlib")) from exc
    path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    entries = [("grace_hopper.jpg", "Rear Admiral Grace Hopper, portrait",
                "public domain (U.S. Navy photograph; matplotlib states no licence for it)",
                "James S. Davis, U.S. Navy (1984)")]
    return _files_photos("matplotlib", path.parent, entries, path.parents[2])


# --------------------------------------------------------------------------- Debian


def _debian_root(package: str, source: str, cache_dir: Path) -> Path:
    from igae.assets.debian import fetch_debian_package

    try:
        return fetch_debian_package(package, cache_dir)
    except OfflineError as exc:
        raise OfflineError(f"photo source {source!r} unavailable: {exc} " + _drop_hint(source)) from exc


def dep5_lookup(copyright_file: Path, source_path: str) -> tuple[str, str]:
    """Copyright holders and licence of ``source_path`` from a Debian (DEP-5) copyright file.

    Args:
        copyright_file: ``usr/share/doc/<pkg>/copyright`` in machine-readable format.
        source_path: the file's path in the upstream source tree, e.g. ``"nature/Aqua.jpg"``.

    Returns:
        ``(copyright, licence)``; the last matching ``Files:`` paragraph wins, as DEP-5 says.
        E-mail addresses are dropped from the copyright text.
    """
    try:
        text = copyright_file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read Debian copyright file ({exc})", path=copyright_file) from exc
    found: tuple[str, str] | None = None
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Files" not in fields:
            continue
        if any(fnmatch.fnmatchcase(source_path, pat) for pat in fields["Files"].split()):
            holders = [re.sub(r"\s*<[^>]*>", "", h).strip(" \u00b4'`") for h in fields.get("Copyright", "").splitlines()]
            licence = fields.get("License", "").splitlines()[0] if fields.get("License") else ""
            found = ("; ".join(h for h in holders if h), licence)
    if found is None:
        raise InputError(f"no Files: paragraph covers {source_path!r}", path=copyright_file)
    return found


# Real colour photographs in opencv-doc's examples/data, chosen by looking at every
# image there. Left out: calibration boards and stereo-calibration shots (left01..14),
# text/documents (sudoku, imageText*, text_*, notes), synthetic or drawn images (pic*,
# cards, detect_blob, ml, logos, gradient, Blender_Suzanne*), a painting (starry_night),
# grayscale content (blox, box*, basketball*, ellipses), a synthetically blurred photo
# (licenseplate_motion), an edited photo (ela_modified), shots of a light box
# (pca_test1), anything under 256 px on the short side (HappyFish, ...), and the second
# view of every pair (aero3, aloeR, graf3, leuvenB, right, rubberwhale2) so that no two
# near-identical pictures can fall on both sides of the train/test split. Debian
# already removes the 'lena' images from the source package (Files-Excluded). baboon and
# messi5 are left out too: their upstream origin and licence are unclear.
_OPENCV = [
    ("aero1.jpg", "Aerial view of a town"),
    ("aloeL.jpg", "Aloe plant in a pot (stereo, left view)"),
    ("apple.jpg", "An apple"),
    ("board.jpg", "Electronic circuit board"),
    ("building.jpg", "Office building"),
    ("butterfly.jpg", "Butterfly on a leaf"),
    ("chicky_512.png", "Small dog"),
    ("ela_original.jpg", "Notebook with an elastic band"),
    ("fruits.jpg", "Cut fruits"),
    ("graf1.png", "Graffiti wall"),
    ("home.jpg", "Palace facade against the sky"),
    ("left.jpg", "Books on the floor (stereo, left view)"),
    ("leuvenA.jpg", "Street of brick houses, Leuven"),
    ("orange.jpg", "An orange"),
    ("rubberwhale1.png", "Toys on a shelf (optical-flow frame 1)"),
    ("smarties.png", "Coloured sweets on white"),
    ("squirrel_cls.jpg", "Squirrel on a branch"),
    ("stuff.jpg", "Objects on a table"),
]


def opencv_doc_photos(cache_dir: Path, folder: Path | None = None) -> list[Photo]:
    """Curated real photos from Debian ``opencv-doc`` (``examples/data`` = upstream ``samples/data``)."""
    root = _debian_root("opencv-doc", "opencv-doc", cache_dir)
    doc = root / "usr/share/doc/opencv-doc"
    copyright_file = doc / "copyright"
    entries = []
    for name, title in _OPENCV:
        holders, licence = dep5_lookup(copyright_file, f"samples/data/{name}")
        entries.append((name, title, f"{licence} (see /usr/share/doc/opencv-doc/copyright)", holders))
    return _files_photos("opencv-doc", doc / "examples/data", entries, root)


_RESOLUTION_SUFFIX = re.compile(r"^(?P<base>.+?)_(?P<w>\d+)x(?P<h>\d+)$")


def _mate_titles(xml_file: Path) -> dict[str, str]:
    """``{filename: English name}`` from ``mate-background-properties/mate-nature.xml``."""
    titles: dict[str, str] = {}
    if not xml_file.is_file():
        return titles
    try:
        tree = ET.parse(xml_file)
    except ET.ParseError:
        return titles  # titles are cosmetic; fall back to file names
    for wp in tree.getroot().iter("wallpaper"):
        fname = wp.findtext("filename")
        names = [n.text for n in wp.findall("name") if not n.attrib and n.text]
        if fname and names:
            titles[Path(fname).name] = names[0]
    return titles


def mate_backgrounds_photos(cache_dir: Path, folder: Path | None = None) -> list[Photo]:
    """The nature photos of Debian ``mate-backgrounds``, one per picture.

    A picture shipped at several resolutions (``Name.jpg``, ``Name_3840x2160.jpg``)
    is kept once, at its largest size; it would otherwise leak across the split.
    """
    root = _debian_root("mate-backgrounds", "mate-backgrounds", cache_dir)
    nature = root / "usr/share/backgrounds/mate/nature"
    files = sorted(p for p in nature.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES) if nature.is_dir() else []
    if not files:
        raise OfflineError(f"photo source 'mate-backgrounds': no photos in {nature}. " + _drop_hint("mate-backgrounds"))
    best: dict[str, Path] = {}
    for p in files:
        m = _RESOLUTION_SUFFIX.match(p.stem)
        base = m.group("base") if m else p.stem
        if base not in best or _pixels(p) > _pixels(best[base]):
            best[base] = p
    titles = _mate_titles(root / "usr/share/mate-background-properties/mate-nature.xml")
    copyright_file = root / "usr/share/doc/mate-backgrounds/copyright"
    entries = []
    for base, p in sorted(best.items()):
        holders, licence = dep5_lookup(copyright_file, f"nature/{p.name}")
        entries.append((p.name, titles.get(p.name, base),
                        f"{licence} (see /usr/share/doc/mate-backgrounds/copyright)", holders))
    return _files_photos("mate-backgrounds", nature, entries, root)


def _pixels(path: Path) -> int:
    with Image.open(path) as im:  # header only
        return im.size[0] * im.size[1]


# --------------------------------------------------------------------------- user folder


def folder_photos(cache_dir: Path, folder: Path | None = None) -> list[Photo]:
    """Every .jpg/.jpeg/.png (any case) under ``folder``, recursively; hidden files skipped.

    Files are not decoded here; an unreadable one raises :class:`InputError` naming it
    when it is opened.
    """
    if folder is None:
        raise InputError("photo source 'folder' needs photos.folder (a folder of .jpg/.png photos)")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("photos.folder is not a folder", path=folder)
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise InputError(f"photos.folder holds no {'/'.join(PHOTO_SUFFIXES)} files", path=folder)
    photos, seen = [], set()
    for p in files:
        rel = p.relative_to(folder).as_posix()
        pid = f"folder-{_safe_id(rel)}"
        if pid in seen:  # e.g. "a b.jpg" and "a_b.jpg": disambiguate deterministically
            pid = f"{pid}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}"
        seen.add(pid)
        photos.append(Photo(photo_id=pid, path_or_loader=p, source="folder", title=rel,
                            licence="user-supplied", credit="user-supplied", origin=rel))
    return photos


# --------------------------------------------------------------------------- registry

SourceFn = Callable[[Path, "Path | None"], list[Photo]]

SOURCES: dict[str, SourceFn] = {
    "skimage": skimage_photos,
    "sklearn": sklearn_photos,
    "matplotlib": matplotlib_photos,
    "opencv-doc": opencv_doc_photos,
    "mate-backgrounds": mate_backgrounds_photos,
    "folder": folder_photos,
}


def collect_photos(sources: list[str], cache_dir: str | Path, folder: str | Path | None = None) -> list[Photo]:
    """All photos of the named sources, in source order then file order.

    Raises:
        InputError: an unknown or repeated source name (the message lists the allowed
            names), or a bad folder.
        OfflineError: a source that cannot be obtained here.
    """
    if not sources:
        raise InputError(f"photos.sources is empty; choose from {sorted(SOURCES)}")
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise InputError(f"unknown photo source(s) {unknown} in photos.sources; allowed: {sorted(SOURCES)}")
    repeated = sorted({s for s in sources if sources.count(s) > 1})
    if repeated:
        raise InputError(f"photo source(s) {repeated} listed more than once in photos.sources")
    photos: list[Photo] = []
    for name in sources:
        photos.extend(SOURCES[name](Path(cache_dir), None if folder is None else Path(folder)))
    ids = [p.photo_id for p in photos]
    if len(set(ids)) != len(ids):  # cannot happen across sources (ids carry the source name)
        raise InputError(f"duplicate photo ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return photos
