"""The adapters, in the order they are tried.

Upstream: ``packages/shared/src/utils/chatml/adapters/index.ts``. Each module of this package ports
one upstream adapter file and imports only ``types``, ``helpers`` and ``js``: never another
adapter, never ``core``.
"""

from __future__ import annotations

from evalflow.lib.ingest.dialects.chatml.adapters.aisdk import AISDK
from evalflow.lib.ingest.dialects.chatml.adapters.gemini import GEMINI
from evalflow.lib.ingest.dialects.chatml.adapters.generic import GENERIC
from evalflow.lib.ingest.dialects.chatml.adapters.langgraph import LANGGRAPH
from evalflow.lib.ingest.dialects.chatml.adapters.microsoft_agent import MICROSOFT_AGENT
from evalflow.lib.ingest.dialects.chatml.adapters.openai import OPENAI
from evalflow.lib.ingest.dialects.chatml.adapters.pydantic_ai import PYDANTIC_AI
from evalflow.lib.ingest.dialects.chatml.adapters.semantic_kernel import SEMANTIC_KERNEL
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext

# Order matters: the first adapter whose detector accepts wins (as in Langfuse).
ADAPTERS: tuple[Adapter, ...] = (
    LANGGRAPH,
    AISDK,
    OPENAI,
    GEMINI,
    MICROSOFT_AGENT,
    PYDANTIC_AI,
    SEMANTIC_KERNEL,
    GENERIC,
)


def select_adapter(ctx: NormalizerContext) -> Adapter:
    for adapter in ADAPTERS:
        try:
            if adapter.detect(ctx):
                return adapter
        except (TypeError, AttributeError, KeyError, IndexError):
            continue  # a detector that trips over odd data is a non-match
    return GENERIC
