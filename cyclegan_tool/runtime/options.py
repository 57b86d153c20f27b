"""`ConvertOptions`: everything `convert` (CLI and GUI) can be asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.fields import opt
from cyclegan_tool.imageio import DEFAULT_MAX_PIXELS

OUTPUT_FORMATS = ("keep", "png", "jpg", "webp")
CODECS = ("h264", "vp9", "ffv1")  # videoio.CODECS
FRAMES = ("all", "first")
PREPROCESS = ("none", "scale_width")


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    format: str = opt("keep", "output format; keep = the input's where writable, else png", OUTPUT_FORMATS)
    quality: int = opt(95, "JPEG / WebP quality")
    suffix: str = opt("", "appended to each output file name's stem")
    size: int | None = opt(None, "scale each image so its shorter side is this many pixels")
    max_side: int | None = opt(None, "scale down images whose longer side is over this")
    keep_size: bool = opt(False, "resize each output back to its input's size after --size/--max-side")
    preprocess: str = opt("none", "the reference test.py's geometry: scale_width scales each image's width to "
                          "--load-size, its height in proportion but at least --crop-size (none: --size/--max-side, "
                          "or the native size)", PREPROCESS)
    load_size: int = opt(256, "the width --preprocess scale_width scales to")
    crop_size: int = opt(256, "the least height --preprocess scale_width gives")
    tile: int | None = opt(None, "images with a side over this many pixels run band by band (exact, bounded memory); an engine translates them in tiles of this size")
    tile_overlap: int = opt(32, "pixels of overlap blended between an engine's tiles")
    batch_size: int = opt(0, "images per inference batch (of equal padded size); 0: 1 on a CPU, where "
                          "batching measured slower, 8 on a GPU")
    skip_existing: bool = opt(False, "leave outputs that already exist (resume an interrupted run)")
    codec: str = opt("h264", "video: h264 (MP4), vp9 (WebM) or ffv1 (lossless, Matroska)", CODECS)
    crf: int = opt(18, "video quality: the encoder's constant rate factor (lower is better and larger; h264 0-51, "
                   "vp9 0-63)")
    temporal_blend: float = opt(0.0, "video and animations: blend each output frame with the previous one by this "
                                "weight, 0 (off) to under 1, to reduce flicker (ghosting where things move)")
    frames: str = opt("all", "animated GIF/WebP: all frames (an animated output), or the first only", FRAMES)
    max_pixels: int = opt(DEFAULT_MAX_PIXELS, "refuse larger images (decompression-bomb guard)")
    decode_workers: int = opt(4, "image decoding threads")
    write_workers: int = opt(2, "image encoding and writing threads")
    shard: tuple[int, int] = field(default=(0, 1))  # (k, n): every n-th file starting at k

    def validate(self) -> ConvertOptions:
        if self.codec not in CODECS:
            raise ConfigError(f"--codec must be one of {', '.join(CODECS)}")
        if self.frames not in FRAMES:
            raise ConfigError(f"--frames must be one of {', '.join(FRAMES)}")
        if not 0 <= self.crf <= 63:
            raise ConfigError(f"--crf must be within 0..63, not {self.crf}")
        if not 0 <= self.temporal_blend < 1:
            raise ConfigError(f"--temporal-blend must be at least 0 and under 1, not {self.temporal_blend}")
        if self.format not in OUTPUT_FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}")
        if not 1 <= self.quality <= 100:
            raise ConfigError("--quality must be within 1..100")
        if self.preprocess not in PREPROCESS:
            raise ConfigError(f"--preprocess must be one of {', '.join(PREPROCESS)}")
        if self.preprocess == "scale_width" and (self.size or self.max_side):
            raise ConfigError("--preprocess scale_width sets the size itself; leave out --size and --max-side")
        if self.preprocess == "none" and (self.load_size, self.crop_size) != (256, 256):
            raise ConfigError("--load-size and --crop-size go with --preprocess scale_width")
        if min(self.load_size, self.crop_size) < 8:
            raise ConfigError("--load-size and --crop-size must be at least 8")
        for name in ("size", "max_side", "tile"):
            v = getattr(self, name)
            if v is not None and v < 8:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 8")
        if self.tile and not 0 <= self.tile_overlap < self.tile // 2:
            raise ConfigError("--tile-overlap must be at least 0 and under half the tile size")
        if self.max_pixels < 1:
            raise ConfigError(f"--max-pixels must be at least 1, not {self.max_pixels}")
        if self.tile_overlap < 0:
            raise ConfigError("--tile-overlap must be at least 0")
        if self.batch_size < 0:
            raise ConfigError(f"--batch-size must be 0 (auto) or more, not {self.batch_size}")
        for name in ("decode_workers", "write_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        k, n = self.shard
        if not (n >= 1 and 0 <= k < n):
            raise ConfigError(f"shard {k}/{n} is not a valid share")
        if "/" in self.suffix or "\\" in self.suffix:
            raise ConfigError("--suffix cannot contain a path separator")
        return self

    def batch_for(self, device_type: str) -> int:
        return self.batch_size or (8 if device_type == "cuda" else 1)
