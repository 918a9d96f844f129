"""``fontus serve`` and ``fontus remotize`` (Juturna's flags): host nodes behind gRPC sessions."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import ConfigError, default_registry
from ..core.config import load_pipeline, read_config_file
from ._command import EXIT_OK, Command, positive_seconds

__all__ = ["REMOTIZE", "SERVE"]


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--plugins", action="append", default=[], metavar="DIR", help="plugin folder; repeatable"
    )
    parser.add_argument(
        "--sessions",
        choices=("isolated", "shared"),
        default="isolated",
        help="isolated: a node instance per session (default); shared: one instance for all",
    )
    parser.add_argument(
        "--max-sessions", type=int, default=64, metavar="N", help="concurrent sessions (default 64)"
    )
    parser.add_argument(
        "--max-message-mb",
        type=_positive_int,
        default=100,
        metavar="N",
        help="largest gRPC message in MiB (default 100, as Juturna)",
    )
    parser.add_argument(
        "--max-window",
        type=int,
        default=256,
        metavar="N",
        help="largest window granted to a client (default 256)",
    )
    parser.add_argument(
        "--max-array-elements",
        type=_positive_int,
        default=None,
        metavar="N",
        help="largest number of elements in one received array (default 2**27 = 134217728)",
    )
    parser.add_argument(
        "--max-depth",
        type=_positive_int,
        default=None,
        metavar="N",
        help="deepest nesting of batches, maps and lists in a received message (default 24, at most 28)",
    )
    parser.add_argument(
        "--grace",
        type=_non_negative,
        default=10.0,
        metavar="S",
        help="seconds sessions get to finish received work on SIGTERM (default 10)",
    )
    parser.add_argument(
        "--open-timeout",
        type=positive_seconds,
        default=30.0,
        metavar="S",
        help="seconds a new stream has to send its Open before it is ended (default 30)",
    )
    parser.add_argument(
        "--no-inline",
        action="store_true",
        help="run every node on its session's worker thread, even nodes declared light "
        "(by default their requests run on the server's event loop: no thread hand-off)",
    )
    parser.add_argument(
        "--no-heap-tuning",
        action="store_true",
        help="leave glibc's malloc thresholds alone (by default large frame buffers are "
        "reused in the heap instead of mapped afresh: thousands fewer page faults per "
        "video frame, at the price of up to 256 MiB of freed memory kept for reuse)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext on a non-loopback address (private networks only)",
    )
    parser.add_argument("--tls-cert", default="", metavar="FILE", help="server certificate (PEM)")
    parser.add_argument("--tls-key", default="", metavar="FILE", help="server private key (PEM)")
    parser.add_argument(
        "--tls-client-ca",
        default="",
        metavar="FILE",
        help="require client certificates signed by this CA (mutual TLS)",
    )
    parser.add_argument(
        "--token-file",
        default="",
        metavar="FILE",
        help="bearer tokens clients must present, one per line (several allow rotation)",
    )
    parser.add_argument(
        "--token-env",
        default="",
        metavar="VAR",
        help="environment variable holding bearer tokens (comma-separated)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="P",
        help="expose Prometheus metrics on http://METRICS_HOST:P/metrics",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of the metrics endpoint (default 127.0.0.1; another one needs --insecure)",
    )


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=50051, help="port (default 50051; 0 picks a free one)"
    )
    hosted = parser.add_mutually_exclusive_group(required=True)
    hosted.add_argument("--node", metavar="MARK", help="host one fixed node (Juturna's shape)")
    hosted.add_argument(
        "--allow", metavar="MARK[,MARK...]", help="host a catalogue of marks clients may ask for"
    )
    hosted.add_argument(
        "--pipeline", metavar="FILE", help="host a fixed sub-pipeline from a pipeline file"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="with --node: the node's arguments (JSON or YAML)"
    )
    _add_server_options(parser)


def _node_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    raw = read_config_file(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping of argument names to values")
    for key in ("configuration", "arguments"):
        if isinstance(raw.get(key), Mapping) and len(raw) <= 3:
            return dict(raw[key])
    return dict(raw)


def _tokens(args: argparse.Namespace) -> tuple[str, ...]:
    tokens: list[str] = []
    if args.token_file:
        try:
            text = Path(args.token_file).read_text()
        except OSError as exc:
            raise ConfigError(
                f"--token-file {args.token_file}: {exc.strerror}; check the path"
            ) from None
        tokens += [
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
        ]
        if not tokens:
            raise ConfigError(f"--token-file {args.token_file}: holds no token")
    if args.token_env:
        value = os.environ.get(args.token_env, "")
        if not value.strip():
            raise ConfigError(f"--token-env {args.token_env}: the variable is not set or empty")
        tokens += [t.strip() for t in value.split(",") if t.strip()]
    return tuple(tokens)


def _limit_overrides(args: argparse.Namespace) -> dict[str, int]:
    """WireLimits fields given on the command line; an array is never larger than a message."""
    given = {"max_array_bytes": args.max_message_mb * 1024 * 1024}
    if args.max_array_elements is not None:
        given["max_array_elements"] = args.max_array_elements
    if args.max_depth is not None:
        given["max_depth"] = args.max_depth
    return given


def _serve(
    args: argparse.Namespace, *, node: str | None = None, node_config: dict[str, Any] | None = None
) -> int:
    from ..remote import WireLimits  # grpc only when serving
    from ..remote.server import Catalogue, ServerConfig, run_server

    registry = default_registry()
    for folder in args.plugins:
        registry.load_plugins(folder)
    pipeline = load_pipeline(args.pipeline) if getattr(args, "pipeline", None) else None
    if pipeline is not None:
        for folder in pipeline.plugins:
            registry.load_plugins(folder)
    allow = (
        [m.strip() for m in args.allow.split(",") if m.strip()]
        if getattr(args, "allow", None)
        else []
    )
    catalogue = Catalogue(
        registry,
        allow=allow,
        node=node if node is not None else (args.node or ""),
        node_config=node_config
        if node_config is not None
        else _node_config(getattr(args, "config", None)),
        pipeline=pipeline,
    )
    config = ServerConfig(
        host=args.host,
        port=args.port,
        sessions=args.sessions,
        max_sessions=args.max_sessions,
        max_message_mb=args.max_message_mb,
        max_window=args.max_window,
        limits=WireLimits(**_limit_overrides(args)),
        grace_s=args.grace,
        open_timeout_s=args.open_timeout,
        inline_light=not args.no_inline,
        heap_tuning=not args.no_heap_tuning,
        insecure=args.insecure,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        tokens=_tokens(args),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    run_server(catalogue, config)
    return EXIT_OK


SERVE = Command(
    name="serve",
    help="host nodes behind a gRPC server for remote pipelines",
    description=(
        "Serve a node (--node), a catalogue of marks (--allow) or a sub-pipeline (--pipeline) "
        "to Warp nodes of other pipelines. SIGTERM/SIGINT drain: sessions finish received work "
        "within --grace, then the server exits 0."
    ),
    configure=_configure_serve,
    handler=_serve,
)


def _configure_remotize(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--name", default="", help="service name (informational)")
    parser.add_argument("-m", "--mark", required=True, help="the node's mark")
    parser.add_argument("-P", "--plugins-dir", dest="plugins_dir", default="", help="plugin folder")
    parser.add_argument("-N", "--pipe", default="", help="pipeline name (informational)")
    parser.add_argument("-p", "--port", type=int, default=50051, help="port (default 50051)")
    parser.add_argument("-c", "--config", default="", help="the node's configuration (JSON)")
    parser.add_argument(
        "-w",
        "--workers",
        type=int,
        default=0,
        help="accepted for compatibility; Fontus runs one worker thread per session",
    )
    _add_server_options(parser)
    parser.set_defaults(sessions_default=True)


def _remotize(args: argparse.Namespace) -> int:
    if args.plugins_dir:
        args.plugins = [*args.plugins, args.plugins_dir]
    args.allow = None
    args.pipeline = None
    return _serve(args, node=args.mark, node_config=_node_config(args.config or None))


REMOTIZE = Command(
    name="remotize",
    help="Juturna-compatible form of 'serve --node' (-n -m -P -N -p -c -w)",
    description="Host one node like 'juturna remotize'; maps onto 'fontus serve --node MARK'.",
    configure=_configure_remotize,
    handler=_remotize,
)
