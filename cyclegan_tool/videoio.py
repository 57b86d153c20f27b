"""Video files in and out, with PyAV (the `av` package: FFmpeg's libraries in its wheels).

`Reader(path)` demuxes a clip once: video frames come out decoded (RGB, with their timestamps),
the audio and subtitle streams' packets come out as they are, to be copied into the output
unchanged; a frame that cannot be decoded is reported with its time and skipped. `Writer`
makes the output clip: the video encoded with `CODECS[codec]` at the input's frame timestamps
(variable frame rate kept), time base, pixel aspect and rotation, every audio and subtitle
stream copied. Animated GIF and WebP files go through PIL (`read_animation`,
`write_animation`) with each frame's duration.

H.264 and VP9 store 4:2:0 colour, which needs even sizes; a clip of odd width or height is
encoded 4:4:4 (its exact size; fewer players take it) and the run says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from cyclegan_tool.errors import DataError, MissingDependencyError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
ANIMATED_EXTENSIONS = (".gif", ".webp")
# codec name -> (FFmpeg encoder, container by extension, the containers it may keep)
CODECS = {"h264": ("libx264", ".mp4", (".mp4", ".m4v", ".mov", ".mkv")),
          "vp9": ("libvpx-vp9", ".webm", (".webm", ".mkv")),
          "ffv1": ("ffv1", ".mkv", (".mkv",))}
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                     ".avi": "avi"}


def is_video_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


def output_suffix(src: Path, codec: str) -> str:
    """The container a translated clip is written in: the input's where the codec fits it."""
    _, default, keeps = CODECS[codec]
    return src.suffix.lower() if src.suffix.lower() in keeps else default


def _av():
    try:
        import av
    except ImportError:
        raise MissingDependencyError("av", "Translating video", "pip install av") from None
    return av


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass
class Frame:
    index: int
    rgb: np.ndarray  # uint8 [H, W, 3]
    pts: int | None
    time_base: Fraction | None

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base) if self.pts is not None and self.time_base else 0.0


@dataclass
class Corrupt:
    time: float
    message: str


@dataclass
class ClipInfo:
    frames: int  # as the container says (0 where it does not; `estimate` then)
    fps: float
    duration: float
    width: int
    height: int
    rotation: int = 0
    audio: int = 0
    subtitles: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def estimate(self) -> int:
        return self.frames or max(1, round(self.duration * self.fps))


class Reader:
    """A clip opened for reading (see the module docstring). Use as a context manager."""

    def __init__(self, path: str | os.PathLike):
        av = _av()
        self.path = Path(path)
        try:
            self.container = av.open(str(self.path))
            if not self.container.streams.video:
                raise DataError(f"{self.path}: no video stream in it")
        except DataError:
            raise
        except Exception as e:  # FFmpeg's errors for a missing, cut or foreign file
            raise DataError(f"{self.path}: cannot open the clip ({_first_line(e)})") from None
        self.video = self.container.streams.video[0]
        self.copied = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        duration = float(self.container.duration / 1e6) if self.container.duration else 0.0
        self.info = ClipInfo(frames=int(self.video.frames or 0), fps=float(rate), duration=duration,
                             width=self.video.codec_context.width, height=self.video.codec_context.height,
                             audio=sum(s.type == "audio" for s in self.copied),
                             subtitles=sum(s.type == "subtitle" for s in self.copied))

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def items(self) -> Iterator[Frame | Corrupt | object]:
        """Frames (decoded), the copied streams' packets (as they are) and Corrupt reports, in the
        order they come; the first frame's rotation is read into `info.rotation`."""
        av = _av()
        index = 0
        streams = [self.video, *self.copied]
        try:
            packets = self.container.demux(*streams)
            for packet in packets:
                if packet.stream is not self.video:
                    if packet.dts is not None:  # the demuxer's flush packets carry nothing
                        yield packet
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
                    yield Corrupt(t, _first_line(e))
                    continue
                for frame in frames:
                    if index == 0:
                        self.info.rotation = int(getattr(frame, "rotation", 0) or 0)
                    yield Frame(index, frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base)
                    index += 1
        except av.error.FFmpegError as e:  # the container itself breaks off (a cut file)
            yield Corrupt(-1.0, f"the clip breaks off after {index} frames ({_first_line(e)})")


class Writer:
    """The translated clip, written to `path` (a temporary name: the caller renames it)."""

    def __init__(self, path: Path, reader: Reader, *, codec: str = "h264", crf: int = 18, suffix: str = ".mp4"):
        av = _av()
        self.av = av
        encoder = CODECS[codec][0]
        try:
            self.container = av.open(str(path), "w", format=CONTAINER_FORMATS.get(suffix, "mp4"))
        except Exception as e:
            raise DataError(f"{path}: cannot write the clip ({_first_line(e)})") from None
        src = reader.video
        rate = src.average_rate or src.guessed_rate or Fraction(25)
        self.video = self.container.add_stream(encoder, rate=rate)
        w, h = reader.info.width, reader.info.height
        self.video.width, self.video.height = w, h
        odd = w % 2 or h % 2
        self.pix_fmt = "yuv444p" if odd and codec != "ffv1" else ("yuv420p" if codec != "ffv1" else "yuv444p")
        self.odd = bool(odd and codec != "ffv1")
        self.video.pix_fmt = self.pix_fmt
        # The input's own time base, on the stream and the encoder: each frame keeps its timestamp
        # (a variable frame rate stays as it was; 1 / frame rate would round them).
        self.video.time_base = src.time_base
        self.video.codec_context.time_base = src.time_base
        if codec in ("h264", "vp9"):
            self.video.options = {"crf": str(crf), **({"b": "0"} if codec == "vp9" else {})}
        if src.sample_aspect_ratio:
            self.video.codec_context.sample_aspect_ratio = src.sample_aspect_ratio
        self.copies = {}
        for stream in reader.copied:
            try:
                self.copies[stream.index] = self.container.add_stream_from_template(stream)
            except Exception as e:
                raise DataError(f"{reader.path}: its {stream.type} stream cannot be copied into {suffix} "
                                f"({_first_line(e)}); choose another --codec") from None
        self.rotation_set = False
        self.reader = reader

    def frame(self, rgb: np.ndarray, pts: int | None, time_base: Fraction | None) -> None:
        if not self.rotation_set:
            if self.reader.info.rotation:
                self.video.set_display_rotation(self.reader.info.rotation)
            self.rotation_set = True
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=self.pix_fmt)
        frame.pts, frame.time_base = pts, time_base
        for packet in self.video.encode(frame):
            self.container.mux(packet)

    def packet(self, packet) -> None:
        out = self.copies.get(packet.stream.index)
        if out is not None:
            packet.stream = out
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.video.encode():
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass


def first_frame(path: str | os.PathLike) -> np.ndarray:
    """The clip's first decodable frame (uint8 [H, W, 3]). Raises DataError naming the file."""
    with Reader(path) as reader:
        for item in reader.items():
            if isinstance(item, Frame):
                return item.rgb
    raise DataError(f"{path}: no frame could be decoded")


def read_animation(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    """An animated GIF or WebP: its frames (uint8 [H, W, 3] or [H, W, 4]), each frame's duration
    in milliseconds, and the loop count."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im):
                rgba = frame.convert("RGBA")
                arr = np.asarray(rgba)
                frames.append(arr if (arr[..., 3] < 255).any() else arr[..., :3].copy())
                durations.append(int(frame.info.get("duration", im.info.get("duration", 100)) or 100))
            return frames, durations, {"loop": im.info.get("loop", 0)}
    except Exception as e:
        raise DataError(f"{path}: cannot read the animation ({_first_line(e)})") from None


def write_animation(path: Path, frames: list[np.ndarray], durations: list[int], loop: int) -> bytes:
    """An animated GIF or WebP (by `path`'s extension) as bytes."""
    import io

    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    fmt = "GIF" if path.suffix.lower() == ".gif" else "WEBP"
    extra = {"lossless": False, "quality": 90} if fmt == "WEBP" else {"disposal": 2}
    images[0].save(buf, format=fmt, save_all=True, append_images=images[1:], duration=durations, loop=loop, **extra)
    return buf.getvalue()


def is_complete_clip(path: Path) -> bool:
    """Whether an existing output is a clip with at least one decodable video frame."""
    try:
        with Reader(path) as r:
            return any(isinstance(item, Frame) for item in r.items())
    except Exception:
        return False
