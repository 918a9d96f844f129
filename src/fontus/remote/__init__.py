"""Remote execution: the wire codec, the server, the Warp client node.

Needs the ``remote`` extra: ``pip install 'fontus[remote]'``.
"""

from ..core.errors import RemoteError, RemoteRefused, RemoteTimeout, RemoteUnavailable, WireError
from ._arrays import CompressionConfig, available_compressions
from ._limits import WireLimits
from ._security import TLSConfig, channel_credentials, token_metadata
from .codec import decode_message, encode_message, register_payload

__all__ = [
    "CompressionConfig",
    "RemoteError",
    "RemoteRefused",
    "RemoteTimeout",
    "RemoteUnavailable",
    "TLSConfig",
    "WireError",
    "WireLimits",
    "available_compressions",
    "channel_credentials",
    "decode_message",
    "encode_message",
    "register_payload",
    "token_metadata",
]
