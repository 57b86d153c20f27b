"""The trainer's typed, frozen configuration. Defaults are the reference CycleGAN's.

Each field's metadata carries its CLI help (and choices), so `cyclegan-tool train`
options are generated from this one definition.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.fields import choices_of, opt
from cyclegan_tool.models import DISCRIMINATORS, GENERATORS, INITS, NORMS, DiscriminatorSpec, GeneratorSpec
from cyclegan_tool.train.families import MODELS, check_options

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
BEST_METRICS = ("kid_a2b", "kid_b2a", "fid_a2b", "fid_b2a")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    dataroot: str = opt("", "folder with trainA/ and trainB/")
    input_nc: int = opt(0, "channels of domain A: 3 (RGB) or 1 (gray; color files are read as their luma); "
                        "0: from the data (1 when every image of the domain is grayscale)")
    output_nc: int = opt(0, "channels of domain B, as --input-nc")
    name: str = opt("experiment", "run name: outputs go to CHECKPOINTS_DIR/NAME", runtime=True)
    checkpoints_dir: str = opt("checkpoints", "where runs are stored", runtime=True)
    model: str = opt("cyclegan", "what to train: cyclegan (two generators, cycle loss), or cut / fastcut (one "
                     "generator A -> B with PatchNCE; their defaults are the CUT code's: docs/CUT.md)", MODELS)
    # networks
    netG: str = opt("resnet_9blocks", "generator architecture", GENERATORS)
    netD: str = opt("basic", "discriminator: basic = 70x70 PatchGAN", DISCRIMINATORS)
    n_layers_D: int = opt(3, "discriminator layers when --netD n_layers")
    ngf: int = opt(64, "generator filters in the first conv layer")
    ndf: int = opt(64, "discriminator filters in the first conv layer")
    norm: str = opt("instance", "normalisation layer", NORMS)
    init_type: str = opt("normal", "weight initialisation", INITS)
    init_gain: float = opt(0.02, "scale for normal, xavier and orthogonal init")
    dropout: bool = opt(False, "dropout in the generator (off for CycleGAN, as in the reference)")
    antialias: bool = opt(False, "blurred (anti-aliased) downsampling in the generator and discriminator (the CUT "
                          "code's default; on for --model cut/fastcut)", negatable=True)
    antialias_up: bool = opt(False, "blurred upsampling then a convolution in the generator instead of a transposed "
                             "convolution (on for --model cut/fastcut)", negatable=True)
    # objective
    gan_mode: str = opt("lsgan", "GAN objective (wgangp adds a gradient penalty)", ("lsgan", "vanilla", "wgangp"))
    lambda_a: float = opt(10.0, "weight of the cycle loss A -> B -> A")
    lambda_b: float = opt(10.0, "weight of the cycle loss B -> A -> B")
    lambda_identity: float = opt(0.5, "identity loss weight, relative to lambda (0 disables it)")
    pool_size: int = opt(50, "how many past fakes the discriminators see (0 disables the pool)")
    # CUT / FastCUT
    lambda_gan: float = opt(1.0, "CUT: weight of the GAN loss")
    lambda_nce: float = opt(1.0, "CUT: weight of the PatchNCE loss (1 for cut, 10 for fastcut)")
    nce_idt: bool = opt(False, "CUT: the identity PatchNCE term on domain B images (on for cut, off for fastcut)",
                        negatable=True)
    nce_layers: str = opt("0,4,8,12,16", "CUT: generator layers whose features PatchNCE compares")
    num_patches: int = opt(256, "CUT: patches per layer")
    nce_t: float = opt(0.07, "CUT: PatchNCE temperature")
    netf_nc: int = opt(256, "CUT: width of the 2-layer MLP that projects each patch")
    flip_equivariance: bool = opt(False, "CUT: mirror half the steps' inputs and ask for mirrored features (on for "
                                  "fastcut)", negatable=True)
    # optimisation
    optimizer: str = opt("adam", "adam (the paper's), or rmsprop (the Keras chapter's: rho 0.9, epsilon 1e-7)",
                         ("adam", "rmsprop"))
    lr: float = opt(0.0002, "learning rate (of the generators, and of the discriminators unless --lr-d)")
    lr_d: float = opt(0.0, "the discriminators' learning rate (0: --lr)")
    beta1: float = opt(0.5, "Adam beta1")
    lr_policy: str = opt("linear", "learning rate schedule: per epoch (linear, step, cosine), or inverse_time: "
                         "lr / (1 + decay * step), Keras' legacy decay, per step",
                         ("linear", "step", "cosine", "inverse_time"))
    lr_decay_iters: int = opt(50, "epochs between x0.1 steps when --lr-policy step")
    lr_decay: float = opt(0.0, "the generators' decay per step under --lr-policy inverse_time")
    lr_decay_d: float = opt(0.0, "the discriminators' decay per step under --lr-policy inverse_time")
    d_first: bool = opt(False, "update the discriminators before the generators in each step, on the step's "
                        "fakes (the Keras chapter's order; the paper's updates the generators first)")
    n_epochs: int = opt(100, "epochs at the initial learning rate")
    n_epochs_decay: int = opt(100, "epochs of linear decay to zero")
    batch_size: int = opt(1, "images per domain per step (per process under torchrun)")
    # data
    load_size: int = opt(286, "scale images to this size")
    crop_size: int = opt(256, "then crop to this size")
    preprocess: str = opt("resize_and_crop", "resizing and cropping at load time", PREPROCESS)
    no_flip: bool = opt(False, "no random horizontal flips")
    direction: str = opt("a2b", "a2b trains trainA -> trainB as A -> B; b2a swaps the folders", ("a2b", "b2a"))
    serial_batches: bool = opt(False, "take A and B in order instead of shuffled and random pairs")
    max_dataset_size: float = opt(math.inf, "use at most this many images per domain")
    init_from: str = opt("", "start both generators from trained weights instead of random ones: a cyclegan-tool "
                         "checkpoint (all four networks), or A2B,B2A: two generator files (.pt/.pth/.onnx) "
                         "or shipped model names (fine-tuning; optimizers start fresh)")
    seed: int = opt(0, "random seed (weights, data order, augmentation, image pool)")
    workers: int = opt(-1, "data loading processes (-1: auto: none for data held in memory, else one per "
                       "spare core up to 4; 0: load in the training process)", runtime=True)
    in_memory: str = opt("auto", "keep the decoded training images in memory (auto: when they take under "
                         "1 GiB)", ("auto", "yes", "no"), runtime=True)
    # speed
    amp: str = opt("auto", "mixed precision: bf16, fp16 with gradient scaling, none (FP32), or auto: bf16 on a CPU "
                   "with native bf16 (AVX512-BF16 or AMX), else none", ("auto", "none", "bf16", "fp16"), runtime=True)
    channels_last: bool = opt(False, "channels-last memory format", runtime=True)
    compile: bool = opt(False, "torch.compile the networks", runtime=True)
    ops: str = opt("auto", "reflection pad / instance norm kernels: native PyTorch, custom (csrc/), or "
                   "auto (whichever measured faster on the device)", ("native", "custom", "auto"), runtime=True)
    device: str = opt("auto", "cpu, cuda or cuda:N (auto: cuda if present, else cpu)", runtime=True)
    # output
    save_epoch_freq: int = opt(5, "write epoch_NNNN.pt every N epochs", runtime=True)
    save_latest_freq: int = opt(5000, "refresh latest.pt every N steps (0: at epoch ends only)", runtime=True)
    print_freq: int = opt(100, "log losses every N steps", runtime=True)
    sample_freq: int = opt(400, "write a sample grid every N steps (0: never)", runtime=True)
    tensorboard: bool = opt(False, "also log to TensorBoard (needs the tensorboard package)", runtime=True)
    val_from_train: int = opt(0, "hold out N images of each domain from trainA/trainB for validation (seeded, "
                              "listed in config.json, never trained on); 0: DATAROOT/valA and valB if present")
    eval_every: int = opt(0, "every N epochs, FID/KID of the generators on the validation images (needs the [eval] "
                          "extra and a validation set: --val-from-train N or valA/valB); keeps best.pt (0: off). "
                          "Test images are never used to choose", runtime=True)
    eval_limit: int = opt(0, "score N validation images of each domain, evenly spread, translated and real (0: all)",
                          runtime=True)
    best_metric: str = opt("kid_a2b", "which validation metric chooses best.pt (lower is better)", BEST_METRICS,
                           runtime=True)
    until_epoch: int = opt(0, "stop after this epoch (resume later with --resume); 0: run to the end", runtime=True)

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    @property
    def generator_spec(self) -> GeneratorSpec:
        """The A -> B generator (`.reversed()` is B -> A). Channels 0 (from the data) read as 3
        until the trainer has resolved them."""
        return GeneratorSpec(name=self.netG, input_nc=self.input_nc or 3, output_nc=self.output_nc or 3,
                             ngf=self.ngf, norm=self.norm, use_dropout=self.dropout, antialias=self.antialias,
                             antialias_up=self.antialias_up)

    def discriminator_spec(self, domain: str = "b") -> DiscriminatorSpec:
        """The discriminator that judges images of `domain` ("a" or "b")."""
        channels = (self.input_nc if domain == "a" else self.output_nc) or 3
        return DiscriminatorSpec(name=self.netD, input_nc=channels, ndf=self.ndf, n_layers=self.n_layers_D,
                                 norm=self.norm, image_size=self.crop_size, antialias=self.antialias)

    @property
    def lr_disc(self) -> float:
        return self.lr_d or self.lr

    def validate(self) -> TrainConfig:
        for f in fields(self):
            choices = choices_of(f)
            value = getattr(self, f.name)
            source = f.metadata.get("choices")
            if hasattr(source, "get"):  # a registry: its families' names too (resnet_12blocks, unet_keras_64)
                source.get(value)
            elif choices and value not in choices:
                raise ConfigError(f"--{f.name.replace('_', '-')} must be one of {', '.join(choices)}")
            if isinstance(value, float) and not math.isfinite(value) and f.name != "max_dataset_size":
                raise ConfigError(f"--{f.name.replace('_', '-')} must be a finite number, not {value}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be 0 or more, not {self.seed}")
        check_options(self)
        if self.model != "cyclegan":
            self._validate_cut()
        for name in ("lr", "init_gain"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be above 0, not {getattr(self, name)}")
        for name in ("lr_d", "lr_decay", "lr_decay_d"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be 0 or more, not {getattr(self, name)}")
        for name in ("input_nc", "output_nc"):
            if getattr(self, name) not in (0, 1, 3):
                raise ConfigError(f"--{name.replace('_', '-')} must be 1 (gray), 3 (RGB) or 0 (from the data), "
                                  f"not {getattr(self, name)}")
        if self.lambda_identity > 0 and self.input_nc and self.output_nc and self.input_nc != self.output_nc:
            raise ConfigError(f"the identity loss feeds each domain to the other's generator, so it needs equal "
                              f"channels; domains have {self.input_nc} and {self.output_nc}: set "
                              "--lambda-identity 0")
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"--beta1 must be within [0, 1), not {self.beta1}")
        for name in ("lambda_a", "lambda_b", "lambda_identity", "pool_size", "save_epoch_freq",
                     "save_latest_freq", "print_freq", "sample_freq", "until_epoch"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be 0 or more, not {getattr(self, name)}")
        if self.workers < -1:
            raise ConfigError(f"--workers must be -1 (auto), 0 or more, not {self.workers}")
        if self.max_dataset_size < 1:
            raise ConfigError("--max-dataset-size must be at least 1")
        if self.preprocess in ("none", "scale_width") and self.batch_size > 1:
            raise ConfigError(f"--preprocess {self.preprocess} keeps each image's own size, so images cannot be "
                              "batched: use --batch-size 1 or a cropping --preprocess")
        if self.val_from_train < 0:
            raise ConfigError(f"--val-from-train must be 0 or more, not {self.val_from_train}")
        if self.eval_every < 0 or self.eval_limit < 0 or self.eval_limit == 1:
            raise ConfigError("--eval-every must be 0 or more and --eval-limit 0 (all) or at least 2")
        positive = ("ngf", "ndf", "batch_size", "load_size", "crop_size", "n_layers_D")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.n_epochs < 0 or self.n_epochs_decay < 0 or self.total_epochs < 1:
            raise ConfigError("--n-epochs plus --n-epochs-decay must be at least 1")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ConfigError(f"--crop-size {self.crop_size} is larger than --load-size {self.load_size}")
        if self.preprocess not in ("none", "scale_width"):
            from cyclegan_tool.models import pad_multiple

            multiple = pad_multiple(self.generator_spec)
            if self.crop_size % multiple:
                raise ConfigError(f"--netG {self.netG} takes sizes that are multiples of {multiple}; --crop-size "
                                  f"{self.crop_size} is not (try {max(multiple, round(self.crop_size / multiple) * multiple)})")
        if self.netD.startswith("keras_dense") and self.preprocess in ("none", "scale_width"):
            raise ConfigError(f"--netD {self.netD} needs every image at --crop-size; use a cropping --preprocess")
        layers = 3 if self.netD == "basic" else self.n_layers_D
        if self.netD != "pixel" and self.preprocess != "none" and self.crop_size < 3 * 2**layers:
            raise ConfigError(f"--crop-size {self.crop_size} is too small for a {layers}-layer PatchGAN "
                              f"discriminator (at least {3 * 2**layers})")
        return self

    def _validate_cut(self) -> None:
        if not self.netG.startswith("resnet_"):
            raise ConfigError(f"--model {self.model} compares the features of a ResNet generator's encoder; "
                              f"--netG {self.netG} has none (use resnet_9blocks or resnet_6blocks)")
        try:
            layers = [int(i) for i in self.nce_layers.split(",")]
        except ValueError:
            raise ConfigError(f"--nce-layers must be comma-separated layer numbers, not '{self.nce_layers}'") from None
        import torch

        from cyclegan_tool.models import build_generator

        with torch.device("meta"):
            depth = len(build_generator(self.generator_spec).model)
        if not layers or layers != sorted(set(layers)) or layers[0] < 0 or layers[-1] >= depth:
            raise ConfigError(f"--nce-layers must be distinct ascending layer numbers from 0 to {depth - 1} "
                              f"(the {self.netG} generator's), not '{self.nce_layers}'")
        if self.num_patches < 1 or self.netf_nc < 1 or not self.nce_t > 0:
            raise ConfigError("--num-patches and --netf-nc must be at least 1 and --nce-t above 0")
        if self.lambda_gan < 0 or self.lambda_nce < 0:
            raise ConfigError("--lambda-gan and --lambda-nce must be 0 or more")
        if self.best_metric.endswith("b2a"):
            raise ConfigError(f"--model {self.model} trains one generator (A -> B); --best-metric "
                              f"{self.best_metric} has nothing to score")

    @property
    def loader_workers(self) -> int:
        """--workers resolved: auto is one process per core beyond the first, at most 4."""
        if self.workers >= 0:
            return self.workers
        import os

        return max(0, min(4, (os.cpu_count() or 1) - 1))

    def to_dict(self) -> dict:
        d = asdict(self)
        if math.isinf(d["max_dataset_size"]):
            d["max_dataset_size"] = None  # JSON has no infinity
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if d.get("max_dataset_size") is None:
            d["max_dataset_size"] = math.inf
        return cls(**d)

    def non_defaults(self) -> dict:
        default = TrainConfig()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}
