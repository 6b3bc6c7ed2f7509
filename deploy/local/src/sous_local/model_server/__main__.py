"""python -m sous_local.model_server --host 127.0.0.1 --port N"""

from __future__ import annotations

import argparse

import uvicorn

from sous_local.model_server.app import create_app

# Longer than any client keeps an idle connection (httpx: 5 s): the client, not the server, closes idle ones,
# so a call never goes out on a connection the server is closing at that instant (a ReadError to the caller).
KEEP_ALIVE_S = 75


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sous_local.model_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--keep-alive-s", type=int, default=KEEP_ALIVE_S, help="how long idle connections stay open")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_keep_alive=args.keep_alive_s,
    )


if __name__ == "__main__":
    main()
