"""Training recipes by name (`--preset`): a preset fills in options the user did not set.

The paper's CycleGAN is the default (no preset). The `keras-*` presets are the recipe of the
Keras textbook chapter (Atienza, "Advanced Deep Learning with Keras", ch. 7): its 4-layer
U-Net and discriminator (models/keras.py), MSE adversarial loss, MAE cycle loss x10 each way,
no identity loss unless `--identity` (then MAE x0.5 each way), no image pool, RMSprop with
lr 2e-4 / decay 6e-8 for the discriminators and 1e-4 / 3e-8 for the generators (Keras' legacy
per-step decay), the discriminators updated first, batch 32 of 32x32 images in [0, 1], no
augmentation, samples every 2,000 steps, and 100,000 steps (160 epochs of 20,000 images).
"""

from __future__ import annotations

from dataclasses import dataclass

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.registry import Registry


@dataclass(frozen=True)
class Preset:
    description: str
    options: dict
    # The --patchgan / --no-patchgan discriminators and the --identity weight, where the recipe has them.
    discriminators: tuple[str, str] | None = None
    identity_weight: float | None = None

    def resolve(self, *, patchgan: bool | None = None, identity: bool | None = None) -> dict:
        """The options, with the recipe's switches applied."""
        opts = dict(self.options)
        if patchgan is not None:
            if not self.discriminators:
                raise ConfigError("--patchgan/--no-patchgan go with a preset that has the switch (keras-*)")
            opts["netD"] = self.discriminators[0 if patchgan else 1]
        if identity is not None:
            if self.identity_weight is None:
                raise ConfigError("--identity/--no-identity go with a preset that has the switch (keras-*)")
            opts["lambda_identity"] = self.identity_weight if identity else 0.0
        return opts


PRESETS: Registry[Preset] = Registry("preset")


def _keras(kernel: int, what: str) -> Preset:
    lam = 10.0
    return Preset(
        description=f"the Keras chapter's CycleGAN for {what}: U-Net and PatchGAN with {kernel}x{kernel} "
                    "kernels, RMSprop, batch 32 at 32x32",
        options=dict(
            netG=f"keras_unet_k{kernel}", netD=f"keras_patch_k{kernel}", ngf=32, ndf=32, norm="instance_affine",
            init_type="glorot_uniform", gan_mode="lsgan", lambda_a=lam, lambda_b=lam, lambda_identity=0.0,
            pool_size=0, optimizer="rmsprop", lr=1e-4, lr_d=2e-4, lr_policy="inverse_time", lr_decay=3e-8,
            lr_decay_d=6e-8, d_first=True, batch_size=32, load_size=32, crop_size=32, preprocess="crop",
            no_flip=True, n_epochs=160, n_epochs_decay=0, sample_freq=2000, save_latest_freq=2000,
        ),
        discriminators=(f"keras_patch_k{kernel}", f"keras_dense_k{kernel}"),
        identity_weight=0.5 / lam,  # the chapter weighs the identity MAE 0.5; ours is lambda * this
    )


PRESETS.register("keras-unet")(Preset(
    description="the Keras CycleGAN our design documents start from (seed 003): its U-Net (unet_keras_128, batch "
                "norm, dropout), the 70x70 PatchGAN with batch norm, LSGAN, cycle x10, no identity, no pool, "
                "143 -> 128 crops",
    options=dict(netG="unet_keras_128", netD="basic", norm="batch", dropout=True, ngf=64, ndf=64, gan_mode="lsgan",
                 lambda_a=10.0, lambda_b=10.0, lambda_identity=0.0, pool_size=0, lr=2e-4, beta1=0.5,
                 load_size=143, crop_size=128, batch_size=1)))
PRESETS.register("keras-colorize")(_keras(3, "grayscale <-> color (CIFAR-10)"))
PRESETS.register("keras-digits")(_keras(5, "digits <-> street-number digits (MNIST <-> SVHN)"))


def preset_options(name: str, *, patchgan: bool | None = None, identity: bool | None = None) -> dict:
    """The TrainConfig options preset `name` sets, with its switches."""
    return PRESETS.get(name).resolve(patchgan=patchgan, identity=identity)
