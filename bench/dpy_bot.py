#!/usr/bin/python3
"""The discord.py baseline for bench/gateway_bench.py: the smallest bot that
does what souk's ping module does (answer "!ping" with "pong").

Run with Debian's Python (python3-discord 2.2.x):

    DPY_BENCH_TOKEN=<token> /usr/bin/python3 bench/dpy_bot.py \
        --api-base http://127.0.0.1:PORT/api/v10 \
        --gateway ws://127.0.0.1:PORT/gateway

Intents: discord.Intents.default() + message_content, *without* members.
That matches souk's default intents (33281 = GUILDS | GUILD_MESSAGES |
MESSAGE_CONTENT, GUILD_MEMBERS off), so discord.py neither chunks guilds at
startup nor keeps member objects beyond its own; the fake's blast
GUILD_CREATEs carry the full member lists either way and both clients parse
them.  Everything else is discord.py's default (message cache of 1000, etc.),
i.e. what a typical minimal discord.py bot runs with.

discord.py 2.2 does not ask GET /gateway for the WebSocket URL: it connects
to DiscordWebSocket.DEFAULT_GATEWAY (wss://gateway.discord.gg/) and adds
?v=10&encoding=json&compress=zlib-stream.  So both the REST base
(http.Route.BASE) and that default are pointed at the fake.  Resumes use
READY's resume_gateway_url, which the fake sets to itself.

Prints "READY <guilds>" on stdout when on_ready fires (after READY and the
guilds it listed have arrived).  SIGTERM ends it; it then prints
"MESSAGES <n>", the number of on_message calls (a check that every event
was turned into a Message).
"""
import argparse
import asyncio
import logging
import os
import signal
import sys

import discord
import discord.gateway
import discord.http
import yarl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api-base", required=True, help="e.g. http://127.0.0.1:PORT/api/v10")
    ap.add_argument("--gateway", required=True, help="e.g. ws://127.0.0.1:PORT/gateway")
    ap.add_argument("--log-level", default="WARNING")
    a = ap.parse_args()
    token = os.environ.get("DPY_BENCH_TOKEN")
    if not token:
        sys.exit("dpy_bot: set DPY_BENCH_TOKEN")

    logging.basicConfig(level=getattr(logging, a.log_level.upper(), logging.WARNING),
                        stream=sys.stderr,
                        format="%(asctime)s dpy_bot %(levelname)s %(name)s: %(message)s")

    # Point discord.py at the fake before the client exists.
    discord.http.Route.BASE = a.api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(a.gateway)

    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_ready():
        print("READY %d" % len(client.guilds), flush=True)

    seen = [0]

    @client.event
    async def on_message(message):
        seen[0] += 1
        if message.author.bot:
            return
        if message.content == "!ping":
            await message.channel.send("pong")

    async def runner():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.ensure_future(client.start(token))
        waiter = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raise the client's error, if any
        await client.close()
        if not task.done():
            task.cancel()
        print("MESSAGES %d" % seen[0], flush=True)

    asyncio.run(runner())


if __name__ == "__main__":
    main()
