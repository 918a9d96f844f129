"""``ServerConfig``: every knob of ``fontus serve``, validated on construction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ...core.errors import ConfigError
from .._limits import WireLimits

__all__ = [
    "DEFAULT_GRACE_S",
    "DEFAULT_MAX_MESSAGE_MB",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_MAX_WINDOW",
    "MAX_DEPTH_CEILING",
    "ServerConfig",
    "is_loopback",
]

#: Seconds a draining server gives sessions to finish received work (Kubernetes
#: gives 30 s before SIGKILL by default; 10 s leaves room for the rest of shutdown).
DEFAULT_GRACE_S = 10.0
#: Largest window a client is granted: deep enough to hide a LAN round trip at
#: 1,000+ msgs/s, bounded so one session cannot queue unbounded work.
DEFAULT_MAX_WINDOW = 256
#: Concurrent sessions: each holds a worker thread and its own node instances; 64
#: covers many client pipelines per replica before memory for models runs out.
DEFAULT_MAX_SESSIONS = 64
#: Largest gRPC message (MiB) either way: Juturna's 100 MiB, so that its clients and
#: servers interoperate; a 4K RGBA frame is 32 MiB.
DEFAULT_MAX_MESSAGE_MB = 100
#: Highest ``--max-depth``: protobuf's parser refuses input nested over 100 levels and
#: one Fontus level costs up to three of them inside a frame, so above 28 the parser,
#: not the limit, would refuse deep input — ending the session with a vaguer message.
MAX_DEPTH_CEILING = 28


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Seconds a new stream has to send its Open: generous for a client on a slow link,
#: short enough that streams opened and left silent (a slowloris) do not pile up.
DEFAULT_OPEN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    sessions: str = "isolated"
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB
    grace_s: float = DEFAULT_GRACE_S
    max_window: int = DEFAULT_MAX_WINDOW
    limits: WireLimits = field(default_factory=WireLimits)
    insecure: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    #: Bearer tokens (secrets): kept out of repr so a logged config never shows them.
    tokens: tuple[str, ...] = field(default=(), repr=False)
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_host: str = "127.0.0.1"
    #: A stream must send its Open within this many seconds, or it is ended.
    open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S
    #: Run the sessions of nodes declared ``light`` on the event loop (see decision 0009).
    inline_light: bool = True
    #: Keep large frame buffers in the heap (glibc's mallopt; see server/_heap.py).
    heap_tuning: bool = True

    def __post_init__(self) -> None:
        if self.sessions not in ("isolated", "shared"):
            raise ConfigError(f"--sessions must be isolated or shared, got {self.sessions!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535, got {self.port}")
        if self.max_sessions < 1:
            raise ConfigError(f"--max-sessions must be >= 1, got {self.max_sessions}")
        if not 1 <= self.max_message_mb <= 2047:
            raise ConfigError(f"--max-message-mb must be 1..2047, got {self.max_message_mb}")
        if self.grace_s < 0:
            raise ConfigError(f"--grace must be >= 0 seconds, got {self.grace_s}")
        if not self.open_timeout_s > 0:
            raise ConfigError(f"--open-timeout must be > 0 seconds, got {self.open_timeout_s}")
        if self.max_window < 1:
            raise ConfigError(f"--max-window must be >= 1, got {self.max_window}")
        if self.limits.max_depth > MAX_DEPTH_CEILING:
            raise ConfigError(
                f"--max-depth must be 1..{MAX_DEPTH_CEILING}, got {self.limits.max_depth}"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be 0..65535, got {self.metrics_port}")
        if self.metrics_port and not self.insecure and not is_loopback(self.metrics_host):
            raise ConfigError(
                f"refusing to serve metrics on {self.metrics_host}: they are plaintext HTTP; "
                "give --insecure if the network is private, or keep 127.0.0.1"
            )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together; give both")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        if not self.tls_cert and not self.insecure and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} without TLS: give --tls-cert/--tls-key, "
                "or --insecure if the network is private and you accept plaintext"
            )

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"
