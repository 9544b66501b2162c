"""Helpers shared by the command-line modules: the usage error, argparse types and input checks.

Bad input raises :class:`UsageError`; :func:`maze_mdlm.cli.main` prints it as one line on stderr
and exits with code 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from envs.files import atomic_write
from envs.observation import check_fits


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage otherwise)
        raise UsageError(message)


# ----------------------------------------------------------------------------- input checks
def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "positive")
nonnegative_int = _int_at_least(0, "non-negative")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0, with a one-line error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def check_env_id(env_id: str, grid_size: int | None = None) -> None:
    """Fail with a clear message for an env id the registry does not support (unknown, excluded
    with its reason, or larger than a given ``grid_size``)."""
    from envs.registry import UnsupportedEnvError, lookup

    try:
        spec = lookup(env_id)
    except UnsupportedEnvError as err:
        raise UsageError(str(err)) from None
    if grid_size is not None:
        check_fits(spec.width, spec.height, env_id, grid_size)


def check_writable(path: str | os.PathLike, flag: str) -> Path:
    """Fail unless ``path`` can be created as a file (its folder exists and is writable)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory, expected a file path")
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: folder {parent} is not writable")
    return path


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def file_digest(path: Path) -> str:
    """The first 16 hex digits of a file's SHA-256 (names a dataset or checkpoint in a record)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
