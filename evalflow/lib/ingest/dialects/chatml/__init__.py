"""Langfuse-compatible ChatML normalisation of one observation's input or output.

Langfuse shows an observation's input/output as a chat when its TypeScript normaliser can turn it
into ChatML: a list of ``{role, name, content, type, tools, tool_calls, tool_call_id, json}``
messages. Frameworks write that payload in a dozen shapes, so the normaliser picks one *adapter*
per payload (LangGraph, Vercel AI SDK, OpenAI, Gemini, Microsoft Agent, Pydantic AI, Semantic
Kernel, generic), lets it rewrite the payload, and then validates the result against a message
schema.

This package is a Python port of that normaliser, kept in step with upstream by hand, so that our
Langfuse adapter reads exports the way Langfuse itself displays them; the ``*.chatml.json``
fixtures beside the Langfuse traces are the TypeScript normaliser's own output and the tests
compare against them. The code mirrors JavaScript semantics where they change the result
(truthiness, ``key in obj``, ``JSON.stringify`` spacing, zod's "optional means absent, not
null"), because reproducing the displayed messages exactly is the point.

Upstream: https://github.com/langfuse/langfuse, ``packages/shared/src/utils/chatml/``. Its files
and ours (each module's docstring names its file):

- ``types.ts`` -> `types`; ``helpers.ts`` -> `helpers`; ``core.ts`` -> `core`; ``index.ts`` -> here
- ``adapters/index.ts`` -> `adapters`; ``adapters/<name>.ts`` -> ``adapters/<name>.py``
  (``microsoft-agent``, ``pydantic-ai`` and ``semantic-kernel`` with underscores)
- the message schema (``ChatMlMessageSchema``, outside ``chatml/`` upstream) -> `schema`
- JavaScript semantics and ``deepParseJson`` (no upstream file) -> `js`

Reference commit: ``adapters/index.ts`` at 40812602eedda4e3613b9aefdf0088fe99d5eb5c (the best
match, medium confidence; the port predates 1e5971561c0ccc43b071bdfdacb2625a2cf373f2, where
``openai.ts`` gained Responses-API input and ``core.ts`` gained ``isSingleChatMlMessage``).
Upstream versions the files match: ``core.ts`` and ``types.ts``
7f9f00602477c6dbfb5474b5d751f112d7d495c2; adapters ``langgraph``
0559b0e92ea5c9a4a4cde4c2fa2d0b65379060c3, ``aisdk`` 0bbd9ab419aa392345e273afc19bc29248f4adbb,
``openai`` 0d46e0f16158872abb01be681af70da5914a6e78, ``gemini``
06108dfecef9469cad10e383d941aaaea4c9ef12, ``microsoft-agent``
0d7df74d2dd9bcff2ca2b8b392153870939ca235, ``pydantic-ai`` 3ca4f8862c9620e28f618507597b88989538c18b,
``semantic-kernel`` 3d6d75647254dc8507231338ee212c5ad84701d6, ``generic``
0248e054c61fe16de4639144c1907e9973146bb0.

Not ported: the ``anthropic`` (langfuse/langfuse PR #12750) and ``ag2`` (PR #12487) adapters,
which are not in upstream at the reference commit; ``selectAdapter``'s explicit
``ctx.framework`` override; the optional ``ProviderAdapter.extractToolEvents``.

Imports run one way: `js` -> `helpers` -> the adapter modules (and `types`) -> `adapters` ->
`core` (and `schema`) -> this module. Adapters never import each other or `core`.

Public entry points: `chatml_input_messages` and `chatml_output_messages` (upstream's
``normalizeInput`` / ``normalizeOutput``; results are lists of message dicts, or None when the
payload is not ChatML-shaped), `deep_parse_json`, `parse_json_text`, `select_adapter`.
(Not to be confused with `evalflow.lib.ingest.dialects.messages.normalize_output`, which reads
any output shape into canonical messages.)
"""

from __future__ import annotations

from evalflow.lib.ingest.dialects.chatml.adapters import ADAPTERS, select_adapter
from evalflow.lib.ingest.dialects.chatml.core import (
    chatml_input_messages,
    chatml_output_messages,
    map_output_to_chatml,
    map_to_chatml,
)
from evalflow.lib.ingest.dialects.chatml.js import (
    deep_parse_json,
    js_stringify,
    parse_json_text,
)
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext

__all__ = [
    "ADAPTERS",
    "Adapter",
    "NormalizerContext",
    "chatml_input_messages",
    "chatml_output_messages",
    "deep_parse_json",
    "js_stringify",
    "map_output_to_chatml",
    "map_to_chatml",
    "parse_json_text",
    "select_adapter",
]
