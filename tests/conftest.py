"""Shared test settings."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models run fastest on one thread, and far faster when other jobs share the CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def untrained():
    """The MCTD tests' tiny model, fresh: every action logit 0 (:func:`tests.models.untrained_policy`)."""
    from tests.models import SEARCH_TINY, untrained_policy

    return untrained_policy(SEARCH_TINY)


@pytest.fixture(scope="module")
def perturbed():
    """The MCTD tests' tiny model with logits that depend on the state (a module may define its own)."""
    from tests.models import SEARCH_TINY, perturbed_policy

    return perturbed_policy(SEARCH_TINY, seed=1)
