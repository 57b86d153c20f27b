"""Where models and datasets come from and go: environment variables first, then the user's
config file, then the defaults.

    CYCLEGAN_TOOL_MODEL_URL     base URL of the published models (NAME.pth is appended)
    CYCLEGAN_TOOL_DATASET_URL   base URL of the datasets (NAME.zip is appended)
    CYCLEGAN_TOOL_MODEL_DIR     where downloaded models are kept ($XDG_CACHE_HOME/cyclegan-tool/models)
    CYCLEGAN_TOOL_USER_MODELS   where `models add` puts a user's models ($XDG_DATA_HOME/cyclegan-tool/models)
    CYCLEGAN_TOOL_OFFLINE=1     never touch the network

The config file, `$XDG_CONFIG_HOME/cyclegan-tool/config.json` (or `CYCLEGAN_TOOL_CONFIG`), is a
JSON object with any of the keys model_url, dataset_url, model_dir, user_models, offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cyclegan_tool.errors import ConfigError

MODEL_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"
DATASET_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/"


def config_path() -> Path:
    if os.environ.get("CYCLEGAN_TOOL_CONFIG"):
        return Path(os.environ["CYCLEGAN_TOOL_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "cyclegan-tool" / "config.json"


def _config() -> dict:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable JSON config file ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must hold a JSON object")
    return data


def setting(name: str, default=None):
    env = os.environ.get(f"CYCLEGAN_TOOL_{name.upper()}")
    if env:
        return env
    return _config().get(name, default)


def base_url(kind: str) -> str:
    """The base URL of `kind` ("model" or "dataset"), ending in a slash."""
    url = str(setting(f"{kind}_url", MODEL_URL if kind == "model" else DATASET_URL))
    return url if url.endswith("/") else url + "/"


def model_dir() -> Path:
    from cyclegan_tool.cache import user_cache_dir

    return Path(setting("model_dir", user_cache_dir() / "models"))


def user_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(setting("user_models", Path(base) / "cyclegan-tool" / "models"))
