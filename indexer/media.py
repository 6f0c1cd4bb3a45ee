"""Turn image and video files into shots with RGB keyframes, ready for the encoders.

Videos are decoded once with PyAV. Shot boundaries come from PySceneDetect's `ContentDetector` (mean HSV difference
between consecutive analysed frames, threshold 27) fed directly with small BGR frames, so no second decode and no
OpenCV capture is needed. Keyframes are picked in the same pass from a bounded, evenly thinned sample of each shot's
frames, so memory stays flat however long a shot runs.

Timing tolerance: only frames at most `ANALYSIS_FPS` times per second are analysed, and a cut is reported at the
first analysed frame of the new shot. A reported cut is therefore never early and at most 1/ANALYSIS_FPS seconds plus
one source frame late (<= 0.1 s + 1/fps; measured 0.0-0.083 s on the fixture clips). Keyframes come from the analysed
frames, thinned to an evenly spaced sample of 5-8 per shot (more if frames_per_shot asks), so a keyframe lies within
1/8 of the shot's length plus one analysis interval of its ideal time (the middle, by default).

Every failure surfaces as `MediaError(path, reason)`; no PyAV, PIL or PySceneDetect exception escapes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

import av
import av.error
import numpy as np
from av.codec.context import ThreadType
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from PIL import Image, ImageOps, UnidentifiedImageError
from scenedetect import ContentDetector, FrameTimecode

from indexer.errors import MediaError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp"})
VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".webm", ".mov"})

KEYFRAME_MAX_SIDE = 512
ANALYSIS_FPS = 10.0  # cuts are located to within one analysis interval; see the module docstring
ANALYSIS_MAX_SIDE = 192  # shot detection needs colour layout, not detail
CUT_THRESHOLD = 27.0  # PySceneDetect's default for ContentDetector
_MIN_CANDIDATES = 8  # keyframe candidates kept per shot (4 per requested keyframe when frames_per_shot > 2)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class MediaLimits:
    max_file_bytes: int = 500 * 1024 * 1024
    max_duration_s: float = 600.0
    max_pixels: int = 3840 * 2160  # width*height
    max_shots: int = 200
    frames_per_shot: int = 1  # keyframes kept per shot (middle frame; >1 spreads them evenly)
    min_shot_s: float = 0.4  # shorter cuts merge into the previous shot

    def __post_init__(self) -> None:
        positive = ("max_file_bytes", "max_duration_s", "max_pixels", "max_shots", "frames_per_shot")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"MediaLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.min_shot_s < 0:
            raise ValueError(f"MediaLimits.min_shot_s must be >= 0, got {self.min_shot_s!r}")


@dataclass(frozen=True)
class Shot:
    index: int  # 0-based within the media file
    start_s: float
    end_s: float
    keyframes: tuple[Image.Image, ...]  # RGB


DEFAULT_LIMITS = MediaLimits()  # a module constant rather than a call in the default argument (ruff B008)


def media_kind(path: Path) -> Literal["image", "video"]:
    """Classify by suffix (case-insensitive); anything else is a MediaError naming the supported suffixes."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    supported = " ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
    raise MediaError(path, f"unsupported file type '{suffix or '(none)'}' (supported: {supported})")


def extract_shots(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> list[Shot]:
    """Split a media file into shots with RGB keyframes whose longer side is <= 512 px.

    An image is one shot at 0.0-0.0 s. A video is decoded once; see the module docstring for the detection method
    and its timing tolerance. Raises MediaError for missing, empty, corrupt, truncated or over-limit files.
    """
    kind = media_kind(path)
    _check_file(path, limits)
    if kind == "image":
        return [Shot(index=0, start_s=0.0, end_s=0.0, keyframes=(_load_image(path, limits),))]
    return _video_shots(path, limits)


def save_thumbnail(image: Image.Image, dest: Path, max_side: int = 320) -> None:
    """Write `image` as a JPEG no larger than max_side on either axis, atomically (readers never see a partial file)."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    thumb = _to_rgb(image)  # always a copy, so the caller's image is untouched
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            thumb.save(fh, format="JPEG", quality=85, optimize=True)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; thumbnails are meant to be served
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def prefetch(
    items: Iterable[T], fn: Callable[[T], R], workers: int = 2, depth: int = 8
) -> Iterator[tuple[T, R | MediaError]]:
    """Yield (item, fn(item)) in input order while up to `workers` threads run fn ahead of the consumer.

    At most `depth` results are in flight (submitted but not yet yielded), which bounds memory; use depth >= workers
    to keep every worker busy. PyAV releases the GIL while decoding, so decoding overlaps the consumer's work.
    A MediaError raised by fn is yielded as the result; any other exception propagates from the generator.
    Closing the generator early cancels work not yet started and waits for running calls to finish.
    """
    if workers < 1 or depth < 1:
        raise ValueError(f"workers and depth must be >= 1, got workers={workers} depth={depth}")

    def guarded(item: T) -> R | MediaError:
        try:
            return fn(item)
        except MediaError as err:
            return err

    pending: deque[tuple[T, Future[R | MediaError]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media-prefetch") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(guarded, item)))
                if len(pending) >= depth:
                    done_item, future = pending.popleft()
                    yield done_item, future.result()
            while pending:
                done_item, future = pending.popleft()
                yield done_item, future.result()
        finally:
            for _, future in pending:
                future.cancel()


# --- files and images -------------------------------------------------------------------------------------------


def _check_file(path: Path, limits: MediaLimits) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError as err:
        raise MediaError(path, "file not found") from err
    except OSError as err:
        raise MediaError(path, f"cannot read file: {err.strerror or err}") from err
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    if size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    if size > limits.max_file_bytes:
        raise MediaError(path, f"file size {size} bytes exceeds the limit of {limits.max_file_bytes} bytes")


def _check_pixels(path: Path, width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.max_pixels:
        raise MediaError(path, f"resolution {width}x{height} exceeds the limit of {limits.max_pixels} pixels")


def _load_image(path: Path, limits: MediaLimits) -> Image.Image:
    try:
        with Image.open(path) as img:
            _check_pixels(path, img.width, img.height, limits)
            img.draft("RGB", (KEYFRAME_MAX_SIDE, KEYFRAME_MAX_SIDE))  # JPEG decodes at reduced scale: much faster
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except UnidentifiedImageError as err:
        raise MediaError(path, "corrupt or unsupported image data (cannot identify image format)") from err
    except Image.DecompressionBombError as err:  # only above ~179 Mpx, far past any sane max_pixels
        raise MediaError(path, f"image resolution exceeds the limit of {limits.max_pixels} pixels") from err
    except (OSError, ValueError, SyntaxError) as err:  # PIL signals truncated/broken data with these
        raise MediaError(path, f"corrupt or truncated image data: {err}") from err
    rgb.thumbnail((KEYFRAME_MAX_SIDE, KEYFRAME_MAX_SIDE), Image.Resampling.LANCZOS)
    return rgb


def _to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB copy; transparent areas become white rather than whatever colour hides under alpha=0."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale (width, height) down, never up, so the longer side is <= max_side."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- videos -----------------------------------------------------------------------------------------------------


def _video_shots(path: Path, limits: MediaLimits) -> list[Shot]:
    try:
        container = av.open(str(path), mode="r", metadata_errors="replace")
    except av.error.FFmpegError as err:
        if isinstance(err, OSError):  # PyAV maps errno failures (permissions, vanished file) onto OSError subclasses
            raise MediaError(path, f"cannot read file: {_ffmpeg_reason(err)}") from err
        raise MediaError(path, f"corrupt, truncated or unsupported container: {_ffmpeg_reason(err)}") from err
    with container:
        stream = _video_stream(path, container, limits)
        declared = _declared_duration(container, stream)
        if declared is not None and declared > limits.max_duration_s:
            raise MediaError(path, f"duration {declared:.1f}s exceeds the limit of {limits.max_duration_s:g}s")
        try:
            shots, decoded = _scan(path, container, stream, limits)
        except av.error.DecoderNotFoundError as err:
            raise MediaError(path, f"unsupported video codec '{stream.codec_context.name}'") from err
        except av.error.FFmpegError as err:
            raise MediaError(path, f"corrupt or truncated video data: {_ffmpeg_reason(err)}") from err
    # A cut-off download often decodes cleanly up to where the bytes stop; the header knows how long it should be.
    # The slack allows for audio outlasting the video when only the container-wide duration is known.
    if declared is not None and decoded < declared - max(0.3, 0.05 * declared):
        raise MediaError(path, f"truncated video: decoded {decoded:.2f}s of the declared {declared:.2f}s")
    log.debug("%s: %d shots over %.2fs", path, len(shots), decoded)
    return shots


def _video_stream(path: Path, container: InputContainer, limits: MediaLimits) -> VideoStream:
    if not container.streams.video:
        raise MediaError(path, "no video stream in the file")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # PyAV leaves it unset when FFmpeg has no decoder for the codec
        raise MediaError(path, "unsupported video codec (no decoder available)")
    if stream.width <= 0 or stream.height <= 0:
        raise MediaError(path, f"invalid video dimensions {stream.width}x{stream.height} (corrupt header?)")
    _check_pixels(path, stream.width, stream.height, limits)
    stream.thread_type = ThreadType.AUTO  # frame + slice threads; the C decoder runs without the GIL
    return stream


def _declared_duration(container: InputContainer, stream: VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _ffmpeg_reason(err: av.error.FFmpegError) -> str:
    return str(err.strerror or err).strip()


def _scan(path: Path, container: InputContainer, stream: VideoStream, limits: MediaLimits) -> tuple[list[Shot], float]:
    """Decode every frame once; analyse ~ANALYSIS_FPS of them for cuts and keyframe candidates."""
    rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
    analysis_w, analysis_h = _fit(*_display_size(stream), ANALYSIS_MAX_SIDE)
    keyframe_w, keyframe_h = _fit(*_display_size(stream), KEYFRAME_MAX_SIDE)
    # One reformatter per target keeps its swscale context alive; frame.reformat() would rebuild it every frame.
    to_analysis, to_keyframe = VideoReformatter(), VideoReformatter()

    def keyframe(frame: VideoFrame) -> Image.Image:
        rgb = to_keyframe.reformat(frame, width=keyframe_w, height=keyframe_h, format="rgb24", interpolation="AREA")
        return Image.fromarray(rgb.to_ndarray())

    detector = ContentDetector(threshold=CUT_THRESHOLD, min_scene_len=0)  # 0: cuts come back at once, unfiltered
    splitter = _ShotSplitter(path, limits)
    origin: float | None = None
    next_analysis, end_s = 0.0, 0.0
    for index, frame in enumerate(container.decode(stream)):
        raw = frame.time if frame.time is not None else float(index / rate)
        origin = raw if origin is None else origin
        t = max(0.0, raw - origin)
        end_s = t + _frame_seconds(frame, rate)
        if t > limits.max_duration_s:
            raise MediaError(path, f"duration exceeds the limit of {limits.max_duration_s:g}s")
        if t + 1e-6 < next_analysis:
            continue
        next_analysis = max(next_analysis + 1.0 / ANALYSIS_FPS, t)  # after a timestamp gap, restart the cadence
        bgr = to_analysis.reformat(frame, width=analysis_w, height=analysis_h, format="bgr24").to_ndarray()
        if detector.process_frame(FrameTimecode(t, fps=rate), bgr):
            splitter.cut(t)
        splitter.offer(t, partial(keyframe, frame))  # converted only if the shot's sample keeps this frame
    if origin is None:
        raise MediaError(path, "no decodable video frames (corrupt or truncated data)")
    return splitter.finish(end_s), end_s


def _display_size(stream: VideoStream) -> tuple[int, int]:
    """Width and height as shown to a viewer: anamorphic video stores non-square pixels."""
    sar = stream.sample_aspect_ratio
    if sar and sar > 0 and sar != 1:
        return max(1, round(stream.width * sar)), stream.height
    return stream.width, stream.height


def _frame_seconds(frame: VideoFrame, rate: Fraction) -> float:
    if frame.duration and frame.time_base:
        return float(frame.duration * frame.time_base)
    return float(1 / rate)


@dataclass
class _Segment:
    """A shot being assembled: its span and an evenly spaced, bounded sample of its frames."""

    start_s: float
    end_s: float
    cap: int
    candidates: list[tuple[float, Image.Image]] = field(default_factory=list)
    stride: int = 1
    seen: int = 0

    def offer(self, t: float, make_image: Callable[[], Image.Image]) -> None:
        # Keep every stride-th frame; when full, drop every other one and double the stride. Only kept frames
        # are converted to RGB, so the cost per shot stays O(cap log n).
        if self.seen % self.stride == 0:
            self.candidates.append((t, make_image()))
            if len(self.candidates) > self.cap:
                self.candidates = self.candidates[::2]
                self.stride *= 2
        self.seen += 1

    def absorb(self, later: _Segment) -> None:
        self.end_s = later.end_s
        merged = self.candidates + later.candidates
        if len(merged) > self.cap:
            keep = np.linspace(0, len(merged) - 1, self.cap).round().astype(int)
            merged = [merged[i] for i in sorted(set(keep.tolist()))]
        self.candidates = merged

    def keyframes(self, count: int) -> tuple[Image.Image, ...]:
        span = self.end_s - self.start_s
        targets = [self.start_s + (i + 0.5) * span / count for i in range(count)]
        chosen: list[int] = []
        for target in targets:
            best = min(range(len(self.candidates)), key=lambda i: abs(self.candidates[i][0] - target))
            if best not in chosen:
                chosen.append(best)
        return tuple(self.candidates[i][1] for i in chosen)


class _ShotSplitter:
    """Groups analysed frames into shots; a shot shorter than min_shot_s is merged into the shot before it.

    Only the current and the previous shot stay open (the previous may still absorb a short current one), so at
    most two candidate samples are held in memory at a time.
    """

    def __init__(self, path: Path, limits: MediaLimits) -> None:
        self._path, self._limits = path, limits
        self._cap = max(_MIN_CANDIDATES, 4 * limits.frames_per_shot)
        self._done: list[Shot] = []
        self._prev: _Segment | None = None
        self._cur = _Segment(0.0, 0.0, self._cap)

    def offer(self, t: float, make_image: Callable[[], Image.Image]) -> None:
        self._cur.offer(t, make_image)

    def cut(self, t: float) -> None:
        self._cur.end_s = t
        if t - self._cur.start_s >= self._limits.min_shot_s:
            if self._prev is not None:
                self._close(self._prev)
            self._prev = self._cur
        elif self._prev is not None:
            self._prev.absorb(self._cur)
        else:
            return  # a too-short opening shot has nothing before it: it simply continues into the next
        self._cur = _Segment(t, t, self._cap)

    def finish(self, end_s: float) -> list[Shot]:
        self._cur.end_s = end_s
        if self._prev is not None and end_s - self._cur.start_s < self._limits.min_shot_s:
            self._prev.absorb(self._cur)
        elif self._cur.candidates:
            if self._prev is not None:
                self._close(self._prev)
            self._prev = self._cur
        if self._prev is not None:
            self._close(self._prev)
        return self._done

    def _close(self, segment: _Segment) -> None:
        if len(self._done) >= self._limits.max_shots:
            raise MediaError(self._path, f"shot count exceeds the limit of {self._limits.max_shots}")
        keyframes = segment.keyframes(max(1, self._limits.frames_per_shot))
        self._done.append(Shot(len(self._done), round(segment.start_s, 3), round(segment.end_s, 3), keyframes))
