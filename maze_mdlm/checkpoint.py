"""Plain-dict checkpoints, written atomically and loadable with ``weights_only=True``.

Layout::

    {"format": "maze-mdlm-checkpoint", "version": 1, "model_type": "mdlm" | "ar",
     "model": state_dict, "model_config": dict, "train_config": dict,
     "optimizer": optimizer state_dict | None, "step": int, "dataset": dict, "extra": dict}
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from envs.files import atomic_write
from maze_mdlm.ar import ARPolicy
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy

FORMAT = "maze-mdlm-checkpoint"
VERSION = 1
MODEL_TYPES = {"mdlm": MDLMPolicy, "ar": ARPolicy}  # "model_type" entry -> class (absent: "mdlm")
LEGACY_CNN_CHANNELS = (32, 64, 64)  # the fixed encoder widths of version-0.1 checkpoints


def model_type_of(model: torch.nn.Module) -> str:
    """The checkpoint ``model_type`` of ``model`` ("mdlm" or "ar")."""
    for name, cls in MODEL_TYPES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"{type(model).__name__} is not a maze-mdlm policy")


def to_plain(value: Any, where: str = "checkpoint") -> Any:
    """Return ``value`` made of types ``torch.load(weights_only=True)`` accepts.

    Dataclasses become dicts, numpy values become Python numbers / lists, paths strings;
    anything else that is not None/bool/int/float/str/tensor/list/tuple/dict raises
    ``TypeError`` naming where it sits.
    """
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars -> Python numbers, arrays -> nested lists
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            out[key] = to_plain(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        items = [to_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a weights_only checkpoint")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    config: ModelConfig,
    optimizer_state: dict[str, Any] | None,
    step: int,
    train_config: Any,
    dataset_meta: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file in the same folder, then ``os.replace``).

    ``train_config`` may be a dataclass or a dict. Returns the final path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "model_type": model_type_of(model),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": to_plain(config, "model_config"),
        "train_config": to_plain(train_config, "train_config"),
        "optimizer": to_plain(optimizer_state, "optimizer"),
        "step": int(step),
        "dataset": to_plain(dataset_meta or {}, "dataset"),
        "extra": to_plain(extra or {}, "extra"),
    }
    return write_atomic(ckpt, target)


def write_atomic(ckpt: dict[str, Any], target: Path) -> Path:
    """``torch.save`` ``ckpt`` to ``target`` atomically (:func:`envs.files.atomic_write`)."""
    return atomic_write(target, lambda handle: torch.save(ckpt, handle))


def export_checkpoint(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Write a release copy of a training checkpoint: same format, without the optimizer and
    RNG state (``optimizer`` is None, so it cannot be resumed). Returns its size in bytes."""
    ckpt = read_checkpoint(source)
    ckpt["optimizer"] = None
    ckpt["extra"] = {k: v for k, v in (ckpt.get("extra") or {}).items() if k != "rng"}
    path = write_atomic(ckpt, Path(target))
    return path.stat().st_size


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint dict (no model is built). Raises ``ValueError``."""
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"checkpoint not found: {source}")
    try:
        ckpt = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is "not a checkpoint"
        raise ValueError(f"{source} is not a maze-mdlm checkpoint (cannot be loaded: {err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{source} is not a maze-mdlm checkpoint (missing format={FORMAT!r})")
    if ckpt.get("version") != VERSION:
        raise ValueError(f"{source}: unsupported checkpoint version {ckpt.get('version')!r}")
    for key in ("model", "model_config", "step"):
        if key not in ckpt:
            raise ValueError(f"{source}: checkpoint has no {key!r} entry")
    ckpt.setdefault("model_type", "mdlm")  # written before the AR baseline existed
    if isinstance(ckpt["model_config"], dict):  # written before the CNN widths were configurable
        ckpt["model_config"].setdefault("cnn_channels", LEGACY_CNN_CHANNELS)
    if ckpt["model_type"] not in MODEL_TYPES:
        raise ValueError(f"{source}: unknown model_type {ckpt['model_type']!r} (known: {', '.join(MODEL_TYPES)})")
    return ckpt


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", model_type: str | None = None
) -> tuple[MDLMPolicy | ARPolicy, dict[str, Any]]:
    """Rebuild the model from a checkpoint. Returns (model in eval mode, checkpoint dict).

    With ``model_type`` ("mdlm" / "ar"), a checkpoint of the other kind raises ``ValueError``.
    """
    ckpt = read_checkpoint(path, map_location)
    if model_type is not None and ckpt["model_type"] != model_type:
        raise ValueError(f"{path} holds a {ckpt['model_type']!r} model, expected {model_type!r}")
    with torch.random.fork_rng(devices=[]):  # building runs the init; keep the global RNG
        model = MODEL_TYPES[ckpt["model_type"]](ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(map_location).eval()
    return model, ckpt
