"""Types shared by the normaliser and its adapters.

Upstream: ``packages/shared/src/utils/chatml/types.ts``. `NormalizerContext` is what detectors and
preprocessors receive; `Adapter` is ``ProviderAdapter`` without the optional
``extractToolEvents``, which the port does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict


class NormalizerContext(TypedDict):
    """What `select_adapter` and every adapter read: the payload and what surrounds it."""

    metadata: Any  # the observation's metadata; the payload itself when there is none
    observationName: str | None
    data: Any  # the (deep-parsed) input or output being normalised


@dataclass(frozen=True)
class Adapter:
    id: str
    detect: Callable[[NormalizerContext], bool]
    preprocess: Callable[[Any, str, NormalizerContext], Any]
