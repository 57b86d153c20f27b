"""The model families `cyclegan-tool train --model` trains, and the defaults each brings.

CycleGAN's defaults are `TrainConfig`'s own (the reference implementation's). CUT and
FastCUT take theirs from the CUT code (taesungp/contrastive-unpaired-translation: its
`options/base_options.py`, `options/train_options.py` and `models/cut_model.py`; docs/CUT.md
lists each with its line). Like a preset's, a family's defaults fill in only the options the
user did not give. Options one family has and the other lacks are refused when set, never
ignored (`check_options`).
"""

from __future__ import annotations

from dataclasses import fields

from cyclegan_tool.errors import ConfigError

MODELS = ("cyclegan", "cut", "fastcut")

# What CUT and FastCUT change from TrainConfig's (CycleGAN's) defaults.
_CUT_COMMON = dict(
    init_type="xavier",  # base_options.py: --init_type xavier
    antialias=True, antialias_up=True,  # base_options.py: --no_antialias, --no_antialias_up off
    pool_size=0,  # cut_model.py: parser.set_defaults(pool_size=0)
    lambda_identity=0.0,  # no CycleGAN identity term: CUT's identity is the PatchNCE one
    d_first=True,  # cut_model.py optimize_parameters: D is updated before G
)
FAMILY_DEFAULTS: dict[str, dict] = {
    "cyclegan": {},
    "cut": {**_CUT_COMMON, "nce_idt": True, "lambda_nce": 1.0,  # cut_model.py, CUT_mode cut
            "n_epochs": 200, "n_epochs_decay": 200},  # train_options.py
    "fastcut": {**_CUT_COMMON, "nce_idt": False, "lambda_nce": 10.0, "flip_equivariance": True,
                "n_epochs": 150, "n_epochs_decay": 50},  # cut_model.py, CUT_mode fastcut
}

# Options only one side has; set on the other, they would do nothing.
CUT_ONLY = ("lambda_gan", "lambda_nce", "nce_idt", "nce_layers", "num_patches", "nce_t", "netf_nc",
            "flip_equivariance")
CYCLEGAN_ONLY = ("lambda_a", "lambda_b", "lambda_identity", "pool_size")


def family_options(model: str, options: dict, changed: frozenset[str]) -> dict:
    """`options` with `model`'s defaults filled in where the user gave nothing (`changed`)."""
    if model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)}, not '{model}'")
    return {**options, **{k: v for k, v in FAMILY_DEFAULTS[model].items() if k not in changed}}


def check_options(cfg) -> None:
    """A ConfigError naming the first option set away from its default that `cfg.model` has no use for."""
    default = {f.name: f.default for f in fields(type(cfg))}
    expected = {**default, **FAMILY_DEFAULTS[cfg.model]}
    unused = CUT_ONLY if cfg.model == "cyclegan" else CYCLEGAN_ONLY
    for name in unused:
        if getattr(cfg, name) != expected[name]:
            other = "--model cut or fastcut" if cfg.model == "cyclegan" else "--model cyclegan"
            raise ConfigError(f"--{name.replace('_', '-')} is an option of {other}; --model {cfg.model} has no use "
                              "for it")
