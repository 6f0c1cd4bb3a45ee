"""Shared fixtures: real encoders loaded once per session, small catalogs written per test.

The CLIP tests use a tiny open_clip architecture with random weights saved to a checkpoint here: it exercises
the real open_clip loading and encoding code; its vectors mean nothing and no test treats them as a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch a model hub

from indexer.encoders import ClipModel, ClipSpec, SentenceTransformerEncoder, load_text_encoder  # noqa: E402
from indexer.pipeline import Encoders, IndexOptions  # noqa: E402
from indexer.store import ClipInfo  # noqa: E402
from tests.helpers import ADS, CONSENTS, SCENES, write_jsonl  # noqa: E402

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def text_encoder() -> SentenceTransformerEncoder:
    return load_text_encoder()


@pytest.fixture(scope="session")
def tiny_clip_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config JSON, checkpoint) of a random-weight tiny open_clip model."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = folder / "tiny-test-clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-test-clip", pretrained=None)
    checkpoint = folder / "tiny-test-clip.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_files: tuple[Path, Path]) -> ClipModel:
    config, checkpoint = tiny_clip_files
    return ClipModel(ClipSpec(str(config), str(checkpoint)))


@pytest.fixture
def text_only(text_encoder: SentenceTransformerEncoder) -> Encoders:
    return Encoders(text_encoder, None, None)


@pytest.fixture
def with_clip(text_encoder: SentenceTransformerEncoder, tiny_clip: ClipModel) -> Encoders:
    info = ClipInfo(tiny_clip.spec.arch, tiny_clip.spec.pretrained, tiny_clip.id, tiny_clip.dim)
    return Encoders(text_encoder, tiny_clip, info)


@pytest.fixture
def catalog(tmp_path: Path) -> dict[str, Path]:
    """A small catalog on disk: scenes (a 3-deep remix chain, consent cases), ads, consents, two images."""
    root = tmp_path / "catalog"
    (root / "media").mkdir(parents=True)
    Image.new("RGB", (48, 32), (10, 20, 60)).save(root / "media" / "s1.png")
    Image.new("RGB", (48, 32), (160, 90, 40)).save(root / "media" / "s4.png")
    return {
        "root": root,
        "scenes": write_jsonl(root / "scenes.jsonl", SCENES),
        "ads": write_jsonl(root / "ads.jsonl", ADS),
        "consents": write_jsonl(root / "consents.jsonl", CONSENTS),
    }


@pytest.fixture
def options(tmp_path: Path) -> IndexOptions:
    return IndexOptions(db=tmp_path / "index", progress=False)
