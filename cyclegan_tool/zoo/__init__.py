"""Models by name: `cyclegan-tool convert --model NAME IN OUT`.

One catalogue (`catalogue()`), three sources:
- **shipped**: ONNX files inside the package (`models.json`, with their int8 CPU forms);
- **published**: the reference implementation's 18 pretrained CycleGAN generators
  (`models.json`, `source: published`), downloaded on first use from the published URL (or the
  mirror `CYCLEGAN_TOOL_MODEL_URL` names) into the user's model folder (zoo/settings.py), checked
  to be a generator before it is kept, its SHA-256 recorded then and verified on every later use;
- **user**: a user's own files added with `cyclegan-tool models add NAME FILE` (zoo/user.py).

Every entry says its direction, what it does, the domain it expects, the scale it runs at
(`size`: shorter side; the published ones were trained at 256), where it comes from and, for the
published ones, their licence; `status()` says whether a published one is downloaded yet.
"""

from __future__ import annotations

import difflib
import json
import time
from pathlib import Path

from cyclegan_tool.errors import CheckpointError, ConfigError

HERE = Path(__file__).resolve().parent
SOURCES = ("shipped", "published", "user")


def _packaged() -> dict[str, dict]:
    return {name: {"source": "shipped", **e} for name, e in json.loads((HERE / "models.json").read_text()).items()}


def catalogue() -> dict[str, dict]:
    """Every model by name: the packaged entries, then the user's (which cannot shadow them)."""
    from cyclegan_tool.zoo import user

    models = _packaged()
    for name, entry in user.entries().items():
        models.setdefault(name, entry)
    return models


def unknown(name: str, models: dict) -> ConfigError:
    close = difflib.get_close_matches(name, models, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"no model named '{name}'{hint}; `cyclegan-tool models` lists them")


def entry(name: str) -> dict:
    models = catalogue()
    if name not in models:
        raise unknown(name, models)
    return models[name]


def downloaded_path(name: str, e: dict | None = None) -> Path:
    """Where a published model is kept once downloaded."""
    from cyclegan_tool.zoo.settings import model_dir

    e = e or entry(name)
    return model_dir() / e["file"]


def status(name: str) -> str:
    """"shipped", "user", "downloaded", or "published" (not downloaded yet)."""
    e = entry(name)
    if e["source"] != "published":
        return e["source"]
    return "downloaded" if downloaded_path(name, e).is_file() else "published"


def model_file(name: str) -> Path:
    """The file of model `name`: a shipped model's, a user's, or a published one's (downloaded now
    if it is not yet here, and verified against the SHA-256 recorded when it was)."""
    e = entry(name)
    if e["source"] == "user":
        from cyclegan_tool.zoo import user

        return user.file_of(name, e)
    if e["source"] == "published":
        return _published(name, e)
    path = HERE / e["file"]
    if not path.is_file():
        raise ConfigError(f"model '{name}' is listed but {path.name} is missing from this install")
    return path


def int8_file(name: str) -> Path | None:
    """The calibrated int8 form of shipped model `name` (for CPUs), if it has one."""
    e = catalogue().get(name, {})
    path = HERE / e["int8"] if e.get("source") == "shipped" and e.get("int8") else None
    return path if path and path.is_file() else None


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _published(name: str, e: dict) -> Path:
    from cyclegan_tool.cache import digest_files
    from cyclegan_tool.fileio import atomic_write_json
    from cyclegan_tool.zoo.fetch import FetchError, fetch
    from cyclegan_tool.zoo.settings import base_url

    path = downloaded_path(name, e)
    url = base_url("model") + f"{e['url_name']}.pth"
    if path.is_file():
        try:
            recorded = json.loads(_record(path).read_text(encoding="utf-8"))["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            recorded = None
        if recorded is None:
            raise CheckpointError(f"model '{name}': {path} has no record of its checksum (it was not downloaded by "
                                  f"cyclegan-tool); delete it to download it again, or add it with `models add`")
        if digest_files([path]) != recorded:
            raise CheckpointError(f"model '{name}': {path} changed since it was downloaded from {url} (its SHA-256 "
                                  "differs from the one recorded then); delete it to download it again")
        return path
    fetch(url, path, what=f"model '{name}'", check=lambda part: _check_generator(part, name, url))
    try:
        atomic_write_json(_record(path), {"name": name, "url": url, "sha256": digest_files([path]),
                                          "downloaded": time.strftime("%Y-%m-%d %H:%M:%S")})
    except OSError as e:
        path.unlink(missing_ok=True)
        raise FetchError(f"model '{name}': cannot record its checksum beside {path} ({e.strerror or e})") from None
    return path


def _check_generator(part: Path, name: str, url: str) -> None:
    """A downloaded file is kept only if it loads safely (weights_only) as a generator's state_dict."""
    from cyclegan_tool import checkpoints
    from cyclegan_tool.zoo.fetch import FetchError, looks_like_html

    if part.stat().st_size == 0 or looks_like_html(part):
        raise FetchError(f"model '{name}': {url} sent {'nothing' if not part.stat().st_size else 'a web page'}, "
                         "not weights")
    try:
        obj = checkpoints.read(part)
        checkpoints.generator_spec_of(part, checkpoints.strip_prefix(obj))
    except CheckpointError as e:
        raise FetchError(f"model '{name}': {url} is not a generator's weights ({str(e).removeprefix(str(part) + ': ')})"
                         ) from None
