"""ONNX models as torch modules, so that gradient attacks and every aalearn tool work on them.

:func:`load_onnx_model` reads an ``.onnx`` file with ``onnx`` and converts its graph to a
``torch.fx`` module with ``onnx2torch`` (both in the ``aalearn[onnx]`` extra). The
converted module computes the same function as the ONNX graph, differentiably. The model
must take the features ``(N, F)`` as its single input and return one score per row
(``(N,)`` or ``(N, 1)``): the logit of :math:`P(\\text{label}=1)`, or the probability itself
when the graph ends in a ``Sigmoid`` (then the logit is recovered with
``torch.logit``). Operators without a converter give a one-line ``ValueError`` naming them.

``onnx2torch`` declares a dependency on torchvision, which it only uses for the
``NonMaxSuppression`` and ``RoiAlign`` converters (object detection, never a tagger).
aalearn installs it without dependencies; when torchvision is absent those two
converters raise the one-line error instead.

Example:
    >>> load_onnx_model("missing.onnx")
    Traceback (most recent call last):
    ...
    FileNotFoundError: ONNX model missing.onnx not found
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aalearn.core.optional import require

__all__ = ["OnnxTagger", "load_onnx_model"]


class OnnxTagger(nn.Module):
    """A converted ONNX graph returning one logit per row.

    Attributes:
        graph: The ``torch.fx`` module from onnx2torch.
        n_features: Input width from the graph's input shape (``None`` when dynamic).
        ends_in_sigmoid: Whether the graph returns probabilities (converted to logits).
        source: The file the model was read from.
    """

    def __init__(
        self, graph: nn.Module, *, n_features: int | None, ends_in_sigmoid: bool, source: str
    ) -> None:
        super().__init__()
        self.graph = graph
        self.n_features = n_features
        self.ends_in_sigmoid = ends_in_sigmoid
        self.source = source

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N,)``."""
        out = self.graph(x.to(torch.float32))
        if isinstance(out, tuple | list):
            out = out[0]
        out = out.reshape(out.shape[0], -1)
        if out.shape[1] != 1:
            raise ValueError(
                f"ONNX model {self.source} returns {out.shape[1]} values per row; aalearn needs one score "
                "(the logit or probability of label 1)"
            )
        out = out[:, 0]
        if self.ends_in_sigmoid:
            out = torch.logit(out.clamp(1e-7, 1 - 1e-7))
        return out


def _require_onnx2torch() -> Any:
    try:
        return importlib.import_module("onnx2torch")
    except ImportError as exc:
        raise ImportError(
            "converting ONNX models to torch needs the package 'onnx2torch', which is not installed: "
            "pip install --no-deps onnx2torch (its torchvision dependency is not needed)"
        ) from exc


def _import_onnx2torch() -> Any:
    """Import onnx2torch; without torchvision, behind a stub used only by its NMS/RoiAlign converters."""
    if "onnx2torch" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return _require_onnx2torch()

    def missing(*_: Any, **__: Any) -> Any:
        raise ValueError(
            "this ONNX operator (NonMaxSuppression/RoiAlign) needs torchvision: pip install torchvision"
        )

    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.roi_align = ops.nms = ops.box_convert = missing  # type: ignore[attr-defined]
    tv.ops = ops  # type: ignore[attr-defined]
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops
    try:
        return _require_onnx2torch()
    finally:  # the stub must not make other libraries believe torchvision is installed
        del sys.modules["torchvision"], sys.modules["torchvision.ops"]


def load_onnx_model(path: str | os.PathLike[str]) -> OnnxTagger:
    """Read an ONNX classifier and convert it to a differentiable torch module.

    Args:
        path: The ``.onnx`` file.

    Returns:
        The :class:`OnnxTagger` in eval mode (float32).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For a file that is not a valid ONNX model, a graph with other than one
            input, or operators onnx2torch cannot convert (named in the message).
        ImportError: Without the ``aalearn[onnx]`` extra.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ONNX model {p} not found")
    onnx = require("onnx", purpose="reading ONNX models")
    onnx2torch = _import_onnx2torch()
    try:
        proto = onnx.load(str(p))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise ValueError(
            f"{p} is not a valid ONNX model: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from None
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"ONNX model {p} has {len(inputs)} inputs; aalearn needs one input of shape (N, F)")
    dims = inputs[0].type.tensor_type.shape.dim
    n_features = int(dims[1].dim_value) if len(dims) == 2 and dims[1].dim_value > 0 else None
    try:
        net = onnx2torch.convert(proto)
    except NotImplementedError as exc:
        raise ValueError(
            f"ONNX model {p} cannot be converted to torch: {exc} "
            "(export the model with standard operators, or an older opset)"
        ) from None
    ends_in_sigmoid = bool(graph.node) and graph.node[-1].op_type == "Sigmoid"
    return OnnxTagger(net, n_features=n_features, ends_in_sigmoid=ends_in_sigmoid, source=str(p)).eval()
