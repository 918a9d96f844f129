"""``fontus remote describe|stats TARGET``: ask a running server."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from . import _render
from ._command import EXIT_OK, Command

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="remote_command", metavar="ACTION", required=True)
    for name, help_ in (
        ("describe", "marks, arguments, session mode and limits"),
        ("stats", "counters per session"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("target", metavar="TARGET", help="host:port of a fontus server")
        p.add_argument(
            "--timeout", type=float, default=10.0, metavar="S", help="seconds to wait (default 10)"
        )
        _add_security_options(p)


def _add_security_options(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("TLS and tokens (any --tls* option turns TLS on)")
    tls.add_argument("--tls", action="store_true", help="TLS with the system's root certificates")
    tls.add_argument("--tls-ca", default="", metavar="FILE", help="CA of the server's certificate")
    tls.add_argument("--tls-cert", default="", metavar="FILE", help="client certificate (mTLS)")
    tls.add_argument("--tls-key", default="", metavar="FILE", help="client private key (mTLS)")
    tls.add_argument(
        "--tls-server-name", default="", metavar="NAME", help="name expected in the certificate"
    )
    tls.add_argument(
        "--token-env", default="", metavar="VAR", help="environment variable holding the token"
    )


def _security(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of the admin calls for the TLS and token options."""
    from ..remote._security import TLSConfig, channel_credentials, token_metadata

    kwargs: dict[str, Any] = {"metadata": token_metadata(args.token_env)}
    if args.tls or args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name:
        tls = TLSConfig(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
        kwargs["credentials"], kwargs["extra_options"] = channel_credentials(tls)
    return kwargs


def _remote(args: argparse.Namespace) -> int:
    from ..remote.admin import describe, server_stats  # grpc only when asked

    console = _render.make_console()
    if args.remote_command == "describe":
        d = describe(args.target, args.timeout, **_security(args))
        console.print(
            f"{d.target}: fontus {d.server_version}, hosting {d.hosting}, {d.session_mode} sessions "
            f"({d.active_sessions}/{d.max_sessions} active), max window {d.max_window}, "
            f"max message {d.max_message_bytes // (1024 * 1024)} MiB, "
            f"compression: {', '.join(d.encodings) or 'none'}, "
            f"value trees: {', '.join(('columns', *d.value_formats))}"
        )
        for mark in d.marks:
            console.print(f"\n[bold]{mark.mark}[/bold] ({mark.kind}): {mark.summary}")
            table = Table()
            for col in ("argument", "type", "default", "help"):
                table.add_column(col)
            for a in mark.arguments:
                table.add_row(a.name, a.type, "required" if a.required else repr(a.default), a.help)
            console.print(table)
        return EXIT_OK
    s = server_stats(args.target, args.timeout, **_security(args))
    console.print(
        f"{s.target}: up {s.uptime_s:.0f}s, {s.active_sessions} active sessions "
        f"({s.sessions_total} since start), {s.requests_total} requests, {s.failures_total} failures"
        "; sessions (recent ended ones too):"
    )
    table = Table()
    cols = (
        "session",
        "active",
        "client",
        "node",
        "mark",
        "requests",
        "outputs",
        "failures",
        "p50_ms",
        "p99_ms",
        "in_flight",
    )
    for col in cols:
        table.add_column(col, justify="right" if col in cols[5:] else "left")
    for n in s.nodes:
        table.add_row(*[f"{n[c]:.2f}" if isinstance(n[c], float) else str(n[c]) for c in cols])
    console.print(table)
    return EXIT_OK


COMMAND = Command(
    name="remote",
    help="ask a running server: 'describe' what it hosts, or its 'stats'",
    configure=_configure,
    handler=_remote,
)
