"""Text engines behind the ``ChatBackend`` protocol: local, OpenAI-compatible, vLLM.

Only the protocol and the local engine are imported eagerly; the OpenAI and vLLM engines
import their client libraries lazily, when constructed.
"""

from plus_sdk.backends.base import ChatBackend

__all__ = ["ChatBackend"]
