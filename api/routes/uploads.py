"""Multipart helpers shared by the image routes: bounded image reads, safe decoding, JSON fields as text."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import UploadFile
from pydantic import ValidationError

from api.errors import ApiError
from api.routes.deps import Service
from api.schemas import ErrorDetail, FiltersRequest


def reference_vector(service: Service, image: UploadFile) -> np.ndarray:
    """The CLIP vector of an uploaded reference image (422 `no_visual_channel` without CLIP vectors)."""
    data = read_image_bytes(image, service.settings.max_image_bytes)
    clip = service.engine.clip
    if clip is None:
        raise ApiError(422, "no_visual_channel", f"this index cannot search by image: {service.engine.clip_status}")
    vector: np.ndarray = clip.encode_images([decode_image(data, service.settings.max_image_pixels)])[0]
    return vector


def read_image_bytes(image: UploadFile, limit: int) -> bytes:
    data = image.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the image is over the {limit} byte limit")
    if not data:
        raise ApiError(422, "invalid_image", "the image file is empty")
    return data


def decode_image(data: bytes, max_pixels: int) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise ApiError(413, "payload_too_large", f"the image has over {max_pixels} pixels")
            probe.verify()
        picture = Image.open(io.BytesIO(data))
        picture.load()
        return picture.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError(422, "invalid_image", f"not a readable image ({exc.__class__.__name__})") from None


def filters_field(raw: str | None) -> FiltersRequest | None:
    if not raw:
        return None
    try:
        return FiltersRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "invalid filters", error_details(exc, "filters")) from None


def error_details(exc: ValidationError, prefix: str = "") -> list[ErrorDetail]:
    return [
        ErrorDetail(field=".".join([prefix, *map(str, e["loc"])]).strip("."), reason=e["msg"]) for e in exc.errors()
    ]
