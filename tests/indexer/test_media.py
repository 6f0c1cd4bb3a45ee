"""indexer.media against real files: the fixture clips in fixtures/clips and files written to tmp_path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from indexer.errors import MediaError
from indexer.media import (
    KEYFRAME_MAX_SIDE,
    MediaLimits,
    Shot,
    extract_shots,
    media_kind,
    prefetch,
    save_thumbnail,
)

CLIPS = Path(__file__).resolve().parents[2] / "fixtures" / "clips"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CLIPS / "cuts.json").read_text(encoding="utf-8"))
# media.py promises cuts at most 1/ANALYSIS_FPS + one source frame late (<= 0.18 s for these clips) and never early.
CUT_TOLERANCE_S = 0.25
THREE_SHOTS = CLIPS / "alpine_night_3shots.mp4"  # 4.5 s, 160x96


def _scene_of(image: Image.Image) -> str:
    """Classify a fixture keyframe by its mean colour (the three synthetic scenes differ strongly)."""
    r, g, b = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    if r > b + 40:
        return "sunset_beach"  # orange sky, sand
    if b > r + 20 and g > r:
        return "night_mountains"  # navy sky, blue-white snow
    if r > g and b > g and (r + g + b) / 3 < 45:
        return "neon_city"  # dark purple with magenta/cyan lights
    return f"unknown rgb=({r:.0f},{g:.0f},{b:.0f})"


def _reason(path: Path, limits: MediaLimits | None = None) -> str:
    with pytest.raises(MediaError) as caught:
        extract_shots(path, limits or MediaLimits())
    assert caught.value.path == str(path)
    return caught.value.reason


# --- shot detection on the fixture clips ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_detected_cuts_match_the_known_cuts(name: str) -> None:
    expected = MANIFEST[name]
    shots = extract_shots(CLIPS / name)

    assert len(shots) == len(expected["cuts"]) + 1
    assert [s.index for s in shots] == list(range(len(shots)))
    assert shots[0].start_s == 0.0
    assert shots[-1].end_s == pytest.approx(expected["duration"], abs=CUT_TOLERANCE_S)
    for shot, cut in zip(shots[1:], expected["cuts"], strict=True):
        assert cut - 0.001 <= shot.start_s <= cut + CUT_TOLERANCE_S, f"cut at {cut}s reported at {shot.start_s}s"
    for before, after in zip(shots, shots[1:], strict=False):
        assert before.end_s == after.start_s


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_keyframes_are_rgb_within_512_and_show_their_own_shot(name: str) -> None:
    shots = extract_shots(CLIPS / name)
    for shot in shots:
        assert len(shot.keyframes) == 1
        frame = shot.keyframes[0]
        assert frame.mode == "RGB"
        assert max(frame.size) <= KEYFRAME_MAX_SIDE
    assert [_scene_of(s.keyframes[0]) for s in shots] == MANIFEST[name]["scenes"]


def test_short_shots_merge_into_the_previous_one_unless_min_shot_allows_them() -> None:
    clip = "flash_insert_2shots.mp4"  # a 0.25 s flash between two 1.5 s shots
    default = extract_shots(CLIPS / clip)
    permissive = extract_shots(CLIPS / clip, MediaLimits(min_shot_s=0.1))
    assert [s.start_s for s in default[1:]] == pytest.approx(MANIFEST[clip]["cuts"], abs=CUT_TOLERANCE_S)
    assert [s.start_s for s in permissive[1:]] == pytest.approx(MANIFEST[clip]["raw_cuts"], abs=CUT_TOLERANCE_S)
    assert default[0].end_s == pytest.approx(1.75, abs=CUT_TOLERANCE_S)  # the flash joined the shot before it


def test_frames_per_shot_spreads_distinct_keyframes_across_the_shot() -> None:
    shots = extract_shots(CLIPS / "night_pan_1shot.mp4", MediaLimits(frames_per_shot=3))
    (shot,) = shots
    assert len(shot.keyframes) == 3
    arrays = [np.asarray(k, dtype=np.int16) for k in shot.keyframes]
    assert all(np.abs(a - b).mean() > 0.5 for a, b in zip(arrays, arrays[1:], strict=False))  # the camera pans


def test_large_video_keyframes_are_downscaled(tmp_path: Path) -> None:
    path = tmp_path / "wide.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for pts, level in enumerate([20] * 10 + [220] * 10):
            frame = av.VideoFrame.from_ndarray(np.full((720, 1280, 3), level, np.uint8), format="rgb24")
            frame.pts = pts
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    shots = extract_shots(path)
    assert [s.start_s for s in shots] == [0.0, 1.0]
    assert [k.size for s in shots for k in s.keyframes] == [(512, 288), (512, 288)]


# --- images -----------------------------------------------------------------------------------------------------


def test_image_is_one_shot_with_an_rgb_keyframe_within_512(tmp_path: Path) -> None:
    path = tmp_path / "poster.png"
    Image.new("RGBA", (1000, 600), (200, 40, 40, 255)).save(path)
    (shot,) = extract_shots(path)
    assert shot == Shot(index=0, start_s=0.0, end_s=0.0, keyframes=shot.keyframes)
    (frame,) = shot.keyframes
    assert frame.mode == "RGB"
    assert frame.size == (512, 307)
    assert frame.getpixel((10, 10)) == (200, 40, 40)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp", ".PNG"])
def test_small_images_keep_their_size(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"small{suffix}"
    Image.new("RGB", (64, 48), (10, 120, 30)).save(path, format="PNG" if suffix == ".PNG" else None)
    (shot,) = extract_shots(path)
    assert shot.keyframes[0].size == (64, 48)
    assert shot.keyframes[0].mode == "RGB"


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(path)
    (shot,) = extract_shots(path)
    assert shot.keyframes[0].getpixel((5, 5)) == (255, 255, 255)


# --- failures ---------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert _reason(tmp_path / "nope.mp4") == "file not found"


@pytest.mark.parametrize("name", ["empty.mp4", "empty.png"])
def test_zero_length_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()
    assert "file is empty (0 bytes)" in _reason(path)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_truncated_clip(tmp_path: Path, name: str) -> None:
    data = (CLIPS / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * 0.3)])
    assert "truncated" in _reason(path)


def test_garbage_bytes_with_a_video_suffix(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "corrupt, truncated or unsupported container" in _reason(path)


def test_garbage_bytes_with_an_image_suffix(tmp_path: Path) -> None:
    path = tmp_path / "garbage.webp"
    path.write_bytes(b"RIFF\x00\x00\x00\x00not really a webp")
    assert "corrupt or unsupported image data" in _reason(path)


def test_truncated_image(tmp_path: Path) -> None:
    source = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(source)
    path = tmp_path / "cut.jpg"
    path.write_bytes(source.read_bytes()[:3000])
    assert "corrupt or truncated image data" in _reason(path)


@pytest.mark.parametrize("name", ["clip.gif", "notes.txt", "README"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"GIF89a")
    reason = _reason(path)
    assert reason.startswith("unsupported file type")
    assert (path.suffix or "(none)") in reason


def test_media_kind_is_case_insensitive() -> None:
    assert media_kind(Path("a/b.MP4")) == "video"
    assert media_kind(Path("x.Jpeg")) == "image"
    assert media_kind(Path("x.mov")) == "video"
    with pytest.raises(MediaError, match="unsupported file type '.gif'"):
        media_kind(Path("x.gif"))


def test_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert _reason(path) == "no video stream in the file"


def test_duration_limit() -> None:
    assert _reason(THREE_SHOTS, MediaLimits(max_duration_s=1.0)) == "duration 4.5s exceeds the limit of 1s"


def test_pixel_limit_for_video_and_image(tmp_path: Path) -> None:
    assert _reason(THREE_SHOTS, MediaLimits(max_pixels=100)) == "resolution 160x96 exceeds the limit of 100 pixels"
    image = tmp_path / "big.png"
    Image.new("RGB", (50, 40)).save(image)
    assert _reason(image, MediaLimits(max_pixels=1999)) == "resolution 50x40 exceeds the limit of 1999 pixels"


def test_file_size_limit() -> None:
    size = THREE_SHOTS.stat().st_size
    reason = _reason(THREE_SHOTS, MediaLimits(max_file_bytes=1000))
    assert reason == f"file size {size} bytes exceeds the limit of 1000 bytes"


def test_shot_limit() -> None:
    assert _reason(THREE_SHOTS, MediaLimits(max_shots=2)) == "shot count exceeds the limit of 2"
    assert len(extract_shots(THREE_SHOTS, MediaLimits(max_shots=3))) == 3


# --- thumbnails -------------------------------------------------------------------------------------------------


def test_save_thumbnail_writes_a_jpeg_within_max_side(tmp_path: Path) -> None:
    image = Image.new("RGB", (640, 360), (30, 60, 200))
    dest = tmp_path / "thumbs" / "nested" / "scene-1.jpg"
    save_thumbnail(image, dest, max_side=200)
    with Image.open(dest) as written:
        assert written.format == "JPEG"
        assert max(written.size) == 200
        assert written.size[1] == pytest.approx(200 * 360 / 640, abs=1)
        written.verify()
    assert image.size == (640, 360)  # the caller's image is not resized in place
    assert sorted(p.name for p in dest.parent.iterdir()) == ["scene-1.jpg"]  # no temp file left behind


def test_save_thumbnail_replaces_an_existing_file_and_accepts_rgba(tmp_path: Path) -> None:
    dest = tmp_path / "t.jpg"
    dest.write_bytes(b"old")
    save_thumbnail(Image.new("RGBA", (100, 50), (0, 0, 0, 0)), dest)
    with Image.open(dest) as written:
        assert written.size == (100, 50)  # never upscaled
        assert written.getpixel((50, 25)) == pytest.approx((255, 255, 255), abs=2)
    assert [p.name for p in tmp_path.iterdir()] == ["t.jpg"]


def test_save_thumbnail_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    dest = tmp_path / "taken.jpg"
    dest.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        save_thumbnail(Image.new("RGB", (10, 10)), dest)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.jpg"]


# --- prefetch ---------------------------------------------------------------------------------------------------


def test_prefetch_preserves_input_order() -> None:
    def slow_for_early_items(i: int) -> int:
        time.sleep(0.02 * (10 - i))  # later items finish first
        return i * i

    results = list(prefetch(range(10), slow_for_early_items, workers=4, depth=6))
    assert results == [(i, i * i) for i in range(10)]


def test_prefetch_yields_media_errors_instead_of_raising() -> None:
    def odd_fails(i: int) -> int:
        if i % 2:
            raise MediaError(f"clip-{i}.mp4", "broken")
        return i

    results = list(prefetch(range(5), odd_fails))
    assert [item for item, _ in results] == [0, 1, 2, 3, 4]
    assert [r for _, r in results if not isinstance(r, MediaError)] == [0, 2, 4]
    errors = [r for _, r in results if isinstance(r, MediaError)]
    assert [e.path for e in errors] == ["clip-1.mp4", "clip-3.mp4"]


def test_prefetch_propagates_other_exceptions() -> None:
    def boom(i: int) -> int:
        if i == 2:
            raise ValueError("bug")
        return i

    seen: list[int] = []
    with pytest.raises(ValueError, match="bug"):
        for item, _ in prefetch(range(5), boom):
            seen.append(item)
    assert seen == [0, 1]


def test_prefetch_runs_in_parallel() -> None:
    def sleepy(i: int) -> int:
        time.sleep(0.2)
        return i

    started = time.perf_counter()
    assert [r for _, r in prefetch(range(8), sleepy, workers=4, depth=8)] == list(range(8))
    elapsed = time.perf_counter() - started
    assert elapsed < 8 * 0.2 * 0.75, f"8 x 0.2 s on 4 workers took {elapsed:.2f}s"  # ideal 0.4 s, serial 1.6 s


def test_prefetch_keeps_at_most_depth_results_in_flight() -> None:
    lock, running, peak = threading.Lock(), [0], [0]

    def tracked(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i

    consumed = []
    for item, _ in prefetch(range(12), tracked, workers=4, depth=2):
        consumed.append(item)
        time.sleep(0.01)
    assert consumed == list(range(12))
    assert peak[0] <= 2


def test_prefetch_can_be_abandoned_early() -> None:
    calls: list[int] = []

    def record(i: int) -> int:
        calls.append(i)
        time.sleep(0.01)
        return i

    gen: Iterator[tuple[int, int | MediaError]] = prefetch(range(1000), record, workers=2, depth=4)
    assert next(gen) == (0, 0)
    gen.close()  # cancels queued work and waits only for calls already running
    assert len(calls) < 10


def test_prefetch_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        list(prefetch([1], lambda i: i, workers=0))
    with pytest.raises(ValueError):
        list(prefetch([1], lambda i: i, depth=0))


def test_prefetch_over_extract_shots_matches_serial() -> None:
    paths = [CLIPS / name for name in sorted(MANIFEST)] + [CLIPS / "missing.mp4"]
    results = list(prefetch(paths, extract_shots, workers=2))
    assert [p for p, _ in results] == paths
    *ok, missing = [r for _, r in results]
    assert isinstance(missing, MediaError)
    assert missing.reason == "file not found"
    for path, shots in zip(paths[:-1], ok, strict=True):
        assert not isinstance(shots, MediaError)
        assert [(s.start_s, s.end_s) for s in shots] == [(s.start_s, s.end_s) for s in extract_shots(path)]


@pytest.mark.parametrize("field", ["max_file_bytes", "max_duration_s", "max_pixels", "max_shots", "frames_per_shot"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MediaLimits(**{field: 0})
