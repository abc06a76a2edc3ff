#!/usr/bin/python3
"""Fake incoming-webhook receiver (Slack, or Discord's /slack route) for souk's tests.

Run with Debian's Python (it needs python3-aiohttp):

    /usr/bin/python3 tests/fakes/fake_webhook.py --port 0 --port-file PATH [--print-port]

Any POST outside /_fake/ is a webhook delivery.  Like Slack's incoming
webhooks (and Discord's Slack-compatible /slack route), a delivery must be
JSON with a non-empty "text"; the answer is 200 "ok".  A body that is not
JSON, or has no text, gets 400 "invalid_payload" (Slack's answer) and is
recorded as refused.

Control API:

  GET  /_fake/posts?since=N      {"posts": [{"i", "at", "path", "content_type",
                                  "json", "status"}], "next": M}
  POST /_fake/script {"responses": [{"status": 500} | {"status": 429,
       "retry_after": 1} | {"status": 400} | {"delay_ms": 2000}, ...]}
                                  answers for the next deliveries, in order
  POST /_fake/reset               forget posts and scripts
"""

import argparse
import asyncio
import json
import os
import sys
import time

from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakeserve  # noqa: E402


class FakeWebhook:
    def __init__(self):
        self.posts = []
        self.scripts = []
        self.port = 0

    async def deliver(self, request):
        raw = await request.read()
        action = self.scripts.pop(0) if self.scripts else None
        if action and action.get("delay_ms"):
            await asyncio.sleep(action["delay_ms"] / 1000.0)
        entry = {"i": len(self.posts), "at": time.time(), "path": request.path,
                 "content_type": request.headers.get("Content-Type", ""), "json": None,
                 "status": 200}
        try:
            entry["json"] = json.loads(raw)
        except ValueError:
            pass
        if action and action.get("status"):
            st = int(action["status"])
            headers = {}
            if st == 429 and "retry_after" in action:
                headers["Retry-After"] = str(action["retry_after"])
            entry["status"] = st
            self.posts.append(entry)
            return web.Response(status=st, text="scripted", headers=headers)
        j = entry["json"]
        if not isinstance(j, dict) or not isinstance(j.get("text"), str) or not j["text"]:
            entry["status"] = 400
            self.posts.append(entry)
            return web.Response(status=400, text="invalid_payload")
        self.posts.append(entry)
        return web.Response(status=200, text="ok")

    async def c_posts(self, request):
        since = int(request.query.get("since", "0"))
        return web.json_response({"posts": self.posts[since:], "next": len(self.posts)})

    async def c_script(self, request):
        b = await request.json()
        self.scripts.extend(b.get("responses", []))
        return web.json_response({"ok": True, "queued": len(self.scripts)})

    async def c_reset(self, request):
        self.posts, self.scripts = [], []
        return web.json_response({"ok": True})

    def make_app(self):
        app = web.Application()
        app.router.add_get("/_fake/posts", self.c_posts)
        app.router.add_post("/_fake/script", self.c_script)
        app.router.add_post("/_fake/reset", self.c_reset)
        app.router.add_post("/{tail:(?!_fake/).*}", self.deliver)
        return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    fakeserve.add_args(ap)
    args = ap.parse_args()
    fake = FakeWebhook()
    fakeserve.serve("fake_webhook", fake.make_app, args,
                    on_port=lambda port: setattr(fake, "port", port))


if __name__ == "__main__":
    main()
