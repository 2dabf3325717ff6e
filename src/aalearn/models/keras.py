r"""Load Keras 2 HDF5 weights of a TopoDNN-like network into PyTorch, without TensorFlow.

The challenge's reference model ``best_model.hdf5`` was saved by Keras 2.15
(``model.save(...)`` in the legacy HDF5 format). Its weights sit in
``model_weights/<layer>/<layer>/<weight>:0``; the layer order is the
``layer_names`` attribute of ``model_weights``:

=========================== ===================================================
layer                       datasets
=========================== ===================================================
``dense``, ``dense_1``, …   ``kernel:0`` of shape ``(in, out)``, ``bias:0``
``batch_normalization``, …  ``gamma:0``, ``beta:0``, ``moving_mean:0``,
                            ``moving_variance:0``
=========================== ===================================================

A Keras ``Dense`` computes :math:`x K + b`, PyTorch's ``Linear`` computes
:math:`x W^\top + b`, so :math:`W = K^\top`. Keras' batch normalisation in inference
mode is :math:`\gamma (h - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta` with the moving
statistics, exactly PyTorch's ``BatchNorm1d`` in eval mode. Layer sizes and ε are read
from the file; files written with ``model.save_weights(...)`` (layers at the root) load
too. Only ``h5py`` is used: nothing is unpickled and TensorFlow is not needed.

The ``model_config`` attribute, where present, is read layer by layer: ``InputLayer`` and
``Dropout`` (the identity at inference) are skipped, ``Activation`` (relu, tanh, sigmoid,
linear) and ``Rescaling`` (:math:`x \cdot s + o`) are implemented
(:class:`KerasTopoDNN`), and any other layer type (``Lambda``, ``Conv1D``, …, or a weight
group whose config class is not ``Dense``/``BatchNormalization``) is refused with a
``ValueError`` naming the layer, never dropped silently.

Reference:
    ECML-PKDD 2025 challenge "Colliding with Adversaries" (starter kit
    CollidingAdversaries/CollidingWithAdversaries, reference model ``best_model.hdf5``);
    TopoDNN: Pearkes et al., arXiv:1704.02124.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import torch

from aalearn.models.topodnn import TopoDNN

__all__ = ["KerasTopoDNN", "load_keras_topodnn"]

# Keras layer classes the loader maps onto TopoDNN, and the weightless ones it implements.
_WEIGHTED_CLASSES = {"Dense": "dense", "BatchNormalization": "batchnorm"}
_IDENTITY_CLASSES = frozenset({"InputLayer", "Dropout"})  # Dropout is the identity at inference
_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": None}

# One weightless operation: ("activation", name) or ("rescaling", (scale, offset)).
_Op = tuple[str, Any]


class KerasTopoDNN(TopoDNN):
    r"""A :class:`TopoDNN` with extra weightless Keras layers (``Activation``, ``Rescaling``).

    ``ops[k]`` lists the operations applied after the ``k``-th weighted layer of the Keras
    chain (``k = 0`` is before the first ``Dense``, after the input standardisation);
    weighted layers are counted in Keras order ``Dense, [BatchNormalization], Dense, …``.
    Layers after the output ``Dense`` are refused by the loader, so the output stays a logit.

    Example:
        >>> m = KerasTopoDNN({1: [("activation", "tanh")]}, n_features=3, hidden=(4,), batchnorm=False)
        >>> m.eval()(torch.zeros(2, 3)).shape
        torch.Size([2])
    """

    def __init__(self, ops: dict[Any, list[Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        ops = ops or {}
        for ops_k in ops.values():
            for kind, arg in ops_k:
                if kind not in ("activation", "rescaling") or (
                    kind == "activation" and arg not in _ACTIVATIONS
                ):
                    raise ValueError(f"unsupported Keras operation {kind!r} ({arg!r})")
        self.ops: dict[int, list[_Op]] = {int(k): [(str(o[0]), o[1]) for o in v] for k, v in ops.items() if v}

    @property
    def config(self) -> dict[str, Any]:
        """:attr:`TopoDNN.config` plus the extra operations (JSON-serialisable; checkpoints keep them)."""
        return {**super().config, "ops": {str(k): [list(op) for op in v] for k, v in self.ops.items()}}

    def _keras_ops(self, h: torch.Tensor, k: int) -> torch.Tensor:
        for kind, arg in self.ops.get(k, []):
            if kind == "activation":
                fn = _ACTIVATIONS[arg]
                h = h if fn is None else fn(h)
            else:
                scale, offset = arg
                h = h * torch.as_tensor(scale, dtype=h.dtype) + torch.as_tensor(offset, dtype=h.dtype)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, as :meth:`TopoDNN.forward`, with the extra Keras operations applied in place."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"TopoDNN expects input of shape (N, {self.n_features}), got {tuple(x.shape)}")
        h = self._keras_ops((x - self.input_mean) / self.input_scale, 0)
        k = 0
        blocks: list[Any] = list(self.blocks)  # _HiddenBlock: linear, activation, norm, dropout
        for block in blocks:
            h = block.activation(block.linear(h))
            k += 1
            h = self._keras_ops(h, k)
            if self.batchnorm:
                h = block.norm(h)
                k += 1
                h = self._keras_ops(h, k)
            h = block.dropout(h)
        return self.output(h).squeeze(-1)


_DENSE_WEIGHTS = ("kernel", "bias")
_BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
_LAYER_INDEX = re.compile(r"^(?P<kind>dense|batch_normalization)(?:_(?P<idx>\d+))?$")


@dataclass
class _Layer:
    name: str
    kind: str  # "dense" or "batchnorm"
    weights: dict[str, npt.NDArray[np.float32]]


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _find_dataset(group: h5py.Group, short: str) -> h5py.Dataset | None:
    """The dataset named ``<short>:0`` (or ``<short>``) anywhere below ``group``."""
    found: list[h5py.Dataset] = []

    def visit(name: str, obj: Any) -> None:
        leaf = name.rsplit("/", 1)[-1]
        if isinstance(obj, h5py.Dataset) and leaf in (f"{short}:0", short):
            found.append(obj)

    group.visititems(visit)
    return found[0] if len(found) == 1 else None


def _read_layer(root: h5py.Group, name: str, path: Path) -> _Layer | None:
    """Read one layer group; ``None`` for a layer without weights (Dropout, InputLayer)."""
    if name not in root or not isinstance(root[name], h5py.Group):
        raise ValueError(f"{path}: the Keras weights group {name!r} is missing")
    group = root[name]
    names = [_decode(n).rsplit("/", 1)[-1] for n in group.attrs.get("weight_names", [])]
    if not names:
        names = [ds.name.rsplit("/", 1)[-1] for ds in _iter_datasets(group)]
    if not names:
        return None
    leaves = {n.split(":")[0] for n in names}
    wanted: tuple[str, ...]
    if "kernel" in leaves:
        kind, wanted = "dense", _DENSE_WEIGHTS
    elif "moving_mean" in leaves or "gamma" in leaves:
        kind, wanted = "batchnorm", _BN_WEIGHTS
    else:
        raise ValueError(
            f"{path}: layer {name!r} has weights {sorted(leaves)}; only Dense and BatchNormalization "
            "layers of a TopoDNN-like network are supported"
        )
    weights: dict[str, npt.NDArray[np.float32]] = {}
    for short in wanted:
        ds = _find_dataset(group, short)
        if ds is None:
            raise ValueError(f"{path}: layer {name!r} has no unique dataset {short!r}:0")
        try:
            arr = np.asarray(ds[()], dtype=np.float32)
        except (OSError, RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read {ds.name} (truncated or corrupt file?): {exc}") from exc
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{path}: {ds.name} contains NaN/inf")
        weights[short] = arr
    return _Layer(name, kind, weights)


def _iter_datasets(group: h5py.Group) -> list[h5py.Dataset]:
    out: list[h5py.Dataset] = []
    group.visititems(lambda _n, obj: out.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def _layer_order(root: h5py.Group, path: Path) -> list[str]:
    """Layer names in model order: the ``layer_names`` attribute, else Keras' numbering."""
    if "layer_names" in root.attrs:
        return [_decode(n) for n in root.attrs["layer_names"]]
    dense: list[tuple[int, str]] = []
    norms: list[tuple[int, str]] = []
    for key in root:
        match = _LAYER_INDEX.match(key)
        if match:
            idx = int(match["idx"] or 0)
            (dense if match["kind"] == "dense" else norms).append((idx, key))
    if not dense:
        raise ValueError(
            f"{path}: no Keras layer groups found (expected 'model_weights/dense', "
            "'model_weights/batch_normalization', ...); is this a Keras 2 HDF5 weights file?"
        )
    dense.sort()
    norms.sort()
    for kind, found in (("dense", dense), ("batch_normalization", norms)):
        for expected, (idx, _) in enumerate(found):
            if idx != expected:
                missing = kind if expected == 0 else f"{kind}_{expected}"
                raise ValueError(f"{path}: the Keras weights group {missing!r} is missing")
    if norms and len(norms) < len(dense) - 1:
        raise ValueError(f"{path}: the Keras weights group 'batch_normalization_{len(norms)}' is missing")
    if norms and len(norms) >= len(dense):
        raise ValueError(f"{path}: the Keras weights group 'dense_{len(dense)}' is missing")
    order: list[str] = []
    for i, (_, name) in enumerate(dense):
        order.append(name)
        if i < len(norms):
            order.append(norms[i][1])
    return order


def _config_layers(f: h5py.File) -> list[dict[str, Any]]:
    """The ordered layer list of the ``model_config`` attribute (empty if absent or unreadable)."""
    raw = f.attrs.get("model_config")
    if raw is None:
        return []
    try:
        layers = json.loads(_decode(raw))["config"]["layers"]
    except (ValueError, KeyError, TypeError):
        return []
    return [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []


def _extra_ops(
    config_layers: list[dict[str, Any]], weighted: list[_Layer], path: Path
) -> dict[int, list[_Op]]:
    """Map the model config onto the weighted layers; implement or refuse every other layer.

    Raises:
        ValueError: naming the first layer the loader cannot implement.
    """
    ops: dict[int, list[_Op]] = {}
    if not config_layers:
        return ops
    kinds = {layer.name: layer.kind for layer in weighted}
    k = 0
    for layer in config_layers:
        cls = str(layer.get("class_name"))
        cfg = layer.get("config", {}) if isinstance(layer.get("config"), dict) else {}
        name = str(cfg.get("name", "?"))
        if name in kinds:
            if _WEIGHTED_CLASSES.get(cls) != kinds[name]:
                raise ValueError(
                    f"{path}: layer {name!r} is a Keras {cls} layer; only Dense and BatchNormalization "
                    "weights are supported"
                )
            k += 1
            continue
        if cls in _IDENTITY_CLASSES:
            continue
        if k >= len(weighted):
            raise ValueError(f"{path}: layer {name!r} ({cls}) after the output layer is not supported")
        if cls == "Activation" and cfg.get("activation") in _ACTIVATIONS:
            ops.setdefault(k, []).append(("activation", cfg["activation"]))
        elif cls == "Rescaling":
            try:
                scale = np.asarray(cfg.get("scale", 1.0), dtype=np.float32)
                offset = np.asarray(cfg.get("offset", 0.0), dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: layer {name!r} (Rescaling) has unreadable scale/offset") from exc
            if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(offset))):
                raise ValueError(f"{path}: layer {name!r} (Rescaling) has a non-finite scale or offset")
            ops.setdefault(k, []).append(("rescaling", (scale.tolist(), offset.tolist())))
        else:
            what = f"{cls}({cfg.get('activation')!r})" if cls == "Activation" else cls
            raise ValueError(
                f"{path}: unsupported Keras layer {name!r} of type {what}; supported: Dense, "
                "BatchNormalization, Activation (relu/tanh/sigmoid/linear), Dropout, Rescaling, InputLayer"
            )
    if k != len(weighted):
        raise ValueError(f"{path}: the model config lists {k} of the {len(weighted)} weighted layers")
    return ops


def _model_config(f: h5py.File) -> dict[str, dict[str, Any]]:
    """Per-layer Keras config from the ``model_config`` attribute (empty if absent)."""
    raw = f.attrs.get("model_config")
    if raw is None:
        return {}
    try:
        config = json.loads(_decode(raw))
        layers = config["config"]["layers"]
        return {layer["config"]["name"]: layer for layer in layers if "name" in layer.get("config", {})}
    except (ValueError, KeyError, TypeError):
        return {}


def load_keras_topodnn(path: str | Path) -> TopoDNN:
    r"""Load Keras 2 HDF5 weights of a TopoDNN-like network into a :class:`TopoDNN`.

    The network must be a chain ``Dense(relu) → [BatchNormalization] → … → Dense(1)``
    (the challenge model: 87 → 300 → 102 → 12 → 6 → 1 with batch normalisation after
    every hidden layer); layer sizes, the presence of batch normalisation and its ε are
    read from the file. Keras' final sigmoid is dropped: the returned model outputs
    logits, and :math:`\sigma(z)` reproduces the Keras prediction.

    Args:
        path: Keras HDF5 file (``model.save("x.h5")`` or ``model.save_weights("x.h5")``).

    Returns:
        The model, in eval mode, on the CPU: a :class:`KerasTopoDNN` when the config has
        ``Activation`` or ``Rescaling`` layers, else a plain :class:`TopoDNN`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not HDF5, truncated or corrupt, is not a Keras
            weights file, or has missing, mis-shaped or unsupported layers.

    Example:
        >>> from aalearn.core.paths import find_challenge_data
        >>> model = load_keras_topodnn(find_challenge_data() / "best_model.hdf5")  # doctest: +SKIP
        >>> model.config["hidden"]  # doctest: +SKIP
        [300, 102, 12, 6]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Keras weights file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {exc}") from exc
    try:
        with f:
            return _load(f, path)
    except (OSError, RuntimeError, KeyError) as exc:
        # h5py reports damaged files as OSError, a failed ``visititems`` ("Object visitation
        # failed") as RuntimeError and a corrupt object header as KeyError.
        raise ValueError(f"{path}: cannot read the HDF5 file (truncated or corrupt?): {exc}") from exc


def _load(f: h5py.File, path: Path) -> TopoDNN:
    if "model_weights" in f:
        root = f["model_weights"]
    elif "layer_names" in f.attrs:
        root = f
    else:
        raise ValueError(
            f"{path} is an HDF5 file but not Keras weights: it has no 'model_weights' group "
            "and no 'layer_names' attribute (Keras 3 '.weights.h5' files are not supported)"
        )
    keras_layers = _model_config(f)
    layers = [
        layer for name in _layer_order(root, path) if (layer := _read_layer(root, name, path)) is not None
    ]
    dense = [layer for layer in layers if layer.kind == "dense"]
    norms = [layer for layer in layers if layer.kind == "batchnorm"]
    if not dense:
        raise ValueError(f"{path}: no Dense layers with weights found")

    # Structure: D (B) D (B) ... D, with batch norm after either all or no hidden layers.
    batchnorm = bool(norms)
    expected = []
    for i in range(len(dense)):
        expected.append("dense")
        if batchnorm and i < len(dense) - 1:
            expected.append("batchnorm")
    if [layer.kind for layer in layers] != expected:
        order = " → ".join(f"{layer.name}" for layer in layers)
        raise ValueError(
            f"{path}: unsupported layer sequence {order}; expected Dense layers each followed by "
            "BatchNormalization (or none at all), ending with a Dense(1) output"
        )

    # Shapes.
    n_in = None
    for layer in dense:
        kernel, bias = layer.weights["kernel"], layer.weights["bias"]
        if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
            raise ValueError(
                f"{path}: layer {layer.name!r} has kernel {kernel.shape} and bias {bias.shape}; "
                "expected (in, out) and (out,)"
            )
        if n_in is not None and kernel.shape[0] != n_in:
            raise ValueError(
                f"{path}: layer {layer.name!r} expects {kernel.shape[0]} inputs but the previous layer "
                f"has {n_in} outputs"
            )
        n_in = kernel.shape[1]
    if dense[-1].weights["kernel"].shape[1] != 1:
        raise ValueError(
            f"{path}: the output layer {dense[-1].name!r} has {dense[-1].weights['kernel'].shape[1]} units; "
            "a binary TopoDNN has one sigmoid output"
        )
    for norm, prev in zip(norms, dense[: len(norms)], strict=True):
        width = prev.weights["kernel"].shape[1]
        for key, arr in norm.weights.items():
            if arr.shape != (width,):
                raise ValueError(
                    f"{path}: {norm.name}/{key} has shape {arr.shape}, expected ({width},) "
                    f"to match {prev.name}"
                )
        if np.any(norm.weights["moving_variance"] < 0):
            raise ValueError(f"{path}: {norm.name}/moving_variance has negative entries")

    # Activations and ε from the saved model config, where present.
    for i, layer in enumerate(dense):
        activation = keras_layers.get(layer.name, {}).get("config", {}).get("activation")
        want = "sigmoid" if i == len(dense) - 1 else "relu"
        if activation is not None and activation != want:
            raise ValueError(
                f"{path}: layer {layer.name!r} uses activation {activation!r}; TopoDNN needs {want!r}"
            )
    eps_values = {
        float(keras_layers.get(n.name, {}).get("config", {}).get("epsilon", 1e-3)) for n in norms
    } or {1e-3}
    if len(eps_values) != 1:
        raise ValueError(f"{path}: batch-normalisation layers use different epsilons {sorted(eps_values)}")
    momentum = {float(keras_layers.get(n.name, {}).get("config", {}).get("momentum", 0.99)) for n in norms}

    ops = _extra_ops(_config_layers(f), layers, path)
    model_cls: Any = KerasTopoDNN if ops else TopoDNN
    model = model_cls(
        **({"ops": ops} if ops else {}),
        n_features=int(dense[0].weights["kernel"].shape[0]),
        hidden=[int(layer.weights["kernel"].shape[1]) for layer in dense[:-1]],
        batchnorm=batchnorm,
        batchnorm_eps=eps_values.pop(),
        batchnorm_momentum=round(1.0 - momentum.pop(), 10) if len(momentum) == 1 else 0.01,
    )
    state: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(dense):
        prefix = "output" if i == len(dense) - 1 else f"blocks.{i}.linear"
        state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(layer.weights["kernel"].T))
        state[f"{prefix}.bias"] = torch.from_numpy(layer.weights["bias"])
    for i, norm in enumerate(norms):
        prefix = f"blocks.{i}.norm"
        state[f"{prefix}.weight"] = torch.from_numpy(norm.weights["gamma"])
        state[f"{prefix}.bias"] = torch.from_numpy(norm.weights["beta"])
        state[f"{prefix}.running_mean"] = torch.from_numpy(norm.weights["moving_mean"])
        state[f"{prefix}.running_var"] = torch.from_numpy(norm.weights["moving_variance"])
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    # Keras inputs are raw features: identity input standardisation.
    state.setdefault("input_mean", model.input_mean.detach().clone())
    state.setdefault("input_scale", model.input_scale.detach().clone())
    model.load_state_dict(state, strict=True)
    return model.eval()
