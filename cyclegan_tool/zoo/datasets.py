"""The CycleGAN benchmark datasets by name: `cyclegan-tool datasets pull horse2zebra [DIR]`.

The archive `NAME.zip` comes from the reference's dataset URL (or `CYCLEGAN_TOOL_DATASET_URL`),
downloaded as models are (zoo/fetch.py: resumable, atomic, one-line errors). Before anything is
unpacked every member is checked: no absolute path, no `..`, no link or device, at most
`MAX_FILES` members and `MAX_BYTES` unpacked, and a bounded ratio to the packed size; a refused
archive writes nothing. It is unpacked into a temporary folder beside DIR, its layout checked
(trainA, trainB, testA, testB, each with images; the archive's one top folder, if any, is
looked through) and only then renamed to DIR. `train NAME` finds a pulled dataset by its name.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from cyclegan_tool.errors import DataError

NAMES = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
         "vangogh2photo", "maps", "facades", "iphone2dslr_flower", "ae_photos")
NOT_HERE = {"cityscapes": "cityscapes needs a registration at https://www.cityscapes-dataset.com; download "
                          "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip there and prepare them with the "
                          "reference's datasets/prepare_cityscapes_dataset.py"}
FOLDERS = ("trainA", "trainB", "testA", "testB")
MAX_BYTES = 20 << 30  # unpacked
MAX_PACKED = 8 << 30
MAX_FILES = 200_000
MAX_RATIO = 200  # unpacked / packed: more is a zip bomb


def datasets_dir() -> Path:
    import os

    from cyclegan_tool.zoo.settings import setting

    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(setting("dataset_dir", Path(base) / "cyclegan-tool" / "datasets"))


def find(name: str) -> Path | None:
    """A pulled dataset's folder by name, if there is one."""
    path = datasets_dir() / name
    return path if all((path / f).is_dir() for f in FOLDERS[:2]) else None


def _unknown(name: str) -> DataError:
    import difflib

    if name in NOT_HERE:
        return DataError(NOT_HERE[name])
    close = difflib.get_close_matches(name, NAMES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return DataError(f"no dataset named '{name}'{hint}; `cyclegan-tool datasets` lists them")


def check_archive(path: Path, what: str) -> None:
    """Refuse an archive that would write outside its folder, holds links, or unpacks too large."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{what}: {path.name} is not a readable zip archive ({e})") from None
    if len(members) > MAX_FILES:
        raise DataError(f"{what}: the archive holds {len(members)} members, over {MAX_FILES}; refused")
    total = 0
    for m in members:
        p = PurePosixPath(m.filename.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0].endswith(":")):
            raise DataError(f"{what}: the archive holds '{m.filename}', a path outside its folder; refused, nothing "
                            "written")
        kind = stat.S_IFMT(m.external_attr >> 16)  # 0: an archiver that records no file type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise DataError(f"{what}: the archive holds '{m.filename}', a link or special file; refused, nothing "
                            "written")
        total += m.file_size
    if total > MAX_BYTES or total > MAX_RATIO * max(1, path.stat().st_size):
        raise DataError(f"{what}: the archive unpacks to {total / 2**30:.1f} GiB, more than this download allows; "
                        "refused")


def layout(root: Path) -> dict[str, int]:
    """Images per folder of a dataset; DataError where trainA/trainB are missing or empty."""
    from cyclegan_tool.imageio import list_images

    counts = {f: len(list_images(root / f)) if (root / f).is_dir() else 0 for f in FOLDERS}
    missing = [f for f in FOLDERS[:2] if not counts[f]]
    if missing:
        raise DataError(f"{root}: not a CycleGAN dataset: no images in {', '.join(missing)} (it needs trainA/ and "
                        "trainB/, and testA/ and testB/ to evaluate)")
    return counts


def pull(name: str, dest: Path | None = None) -> tuple[Path, dict[str, int]]:
    """Download and unpack dataset `name` into `dest` (default: the datasets folder / NAME);
    returns the folder and its image counts. An existing folder is used as it is."""
    from cyclegan_tool.zoo.fetch import fetch
    from cyclegan_tool.zoo.settings import base_url

    if name not in NAMES:
        raise _unknown(name)
    dest = Path(dest) if dest else datasets_dir() / name
    if dest.exists():
        if dest.is_dir() and any(dest.iterdir()):
            return dest, layout(dest)
    what = f"dataset '{name}'"
    archive = dest.parent / f".{name}.zip"
    url = base_url("dataset") + f"{name}.zip"
    fetch(url, archive, what=what, max_bytes=MAX_PACKED, check=lambda part: check_archive(part, what))
    check_archive(archive, what)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(work)
        top = [p for p in work.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        root = top[0] if len(top) == 1 and top[0].is_dir() and not (work / "trainA").is_dir() else work
        counts = layout(root)
        if dest.exists():
            dest.rmdir()  # an empty folder the user made for it
        root.rename(dest)
    except OSError as e:
        raise DataError(f"{what}: cannot unpack it into {dest} ({e.strerror or e})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    archive.unlink(missing_ok=True)
    return dest, counts
