"""Run the simulator without Django: ``python -m workflows_app.simulator --port 8765``."""

from __future__ import annotations

import argparse
import os

from .server import Simulator, serve_forever


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Fake Nexthink tenant for the portal.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default="portal-demo")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--classic-user", default="portal-classic")
    parser.add_argument("--classic-password", default="classic-secret")
    parser.add_argument("--execution-seconds", type=float, default=3.0)
    parser.add_argument("--trigger-shape", choices=("flags", "list"), default="flags")
    parser.add_argument(
        "--nql-column-shape", choices=("plain", "execution", "table"), default="plain"
    )
    parser.add_argument("--export-seconds", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--control-token",
        default=os.environ.get("SIMULATOR_CONTROL_TOKEN") or None,
        help="Required as X-Simulator-Token by /_simulator/ (default: $SIMULATOR_CONTROL_TOKEN); "
        "without one, those endpoints answer only on a loopback address.",
    )
    args = parser.parse_args(argv)

    def ready(sim: Simulator) -> None:
        print(f"Nexthink simulator on {sim.base_url}  token URL {sim.token_url}", flush=True)

    serve_forever(
        args.host,
        args.port,
        on_ready=ready,
        client_id=args.client_id,
        client_secret=args.client_secret,
        execution_seconds=args.execution_seconds,
        trigger_shape=args.trigger_shape,
        nql_column_shape=args.nql_column_shape,
        export_seconds=args.export_seconds,
        verbose=args.verbose,
        control_token=args.control_token,
        classic_user=args.classic_user,
        classic_password=args.classic_password,
    )


if __name__ == "__main__":
    main()
