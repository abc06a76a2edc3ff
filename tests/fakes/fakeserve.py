"""Run a small aiohttp fake on loopback the way souk's tests expect: bind
--port (0: a free one), write the port to --port-file once listening (and
as stdout's first line with --print-port, for C tests that spawn it), log
to stderr, stop cleanly on SIGINT or SIGTERM.  Used by fake_kucoin.py and
fake_webhook.py."""

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web


def add_args(ap):
    """The command-line flags every fake takes."""
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--print-port", action="store_true",
                    help="also print the port as the first line of stdout")
    ap.add_argument("--log-level", default="INFO")


async def _serve(app, args, on_port, log):
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, shutdown_timeout=0.5)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    if on_port:
        on_port(port)
    log.info("listening on http://%s:%d", args.host, port)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    if args.print_port:
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def serve(name, make_app, args, on_port=None):
    """Configure logging, then serve make_app() until a signal."""
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        stream=sys.stderr,
                        format="%(asctime)s " + name + " %(levelname)s %(message)s")
    asyncio.run(_serve(make_app(), args, on_port, logging.getLogger(name)))
