#!/usr/bin/env python3
"""An echo bot's webhook behind botgate, with nothing but the Python standard library.

botgate receives Telegram's updates, checks them, and forwards the good ones here. This server
makes sure a request really came through botgate, then answers with a webhook reply: a Bot API
call in the HTTP response, which Telegram executes, so the bot needs no token for it.

Two checks, each optional, at least one required (see README.md next to this file):

- the upstream secret header: X-Telegram-Bot-Api-Secret-Token equals botgate's
  upstream.secret_token, compared in constant time;
- a signed forward (botgate's upstream.sign with alg HS256): the JWT in Authorization is checked
  (signature, iss, aud, exp, iat, jti used once) and its body_sha256 claim against the exact bytes
  received. docs/upstream-verification.md explains each step.

    BOTGATE_UPSTREAM_SECRET=... PORT=8081 python3 bot.py
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def setting(name, default=None):
    """NAME from the environment, or the content of the file NAME_FILE names (Docker and
    Kubernetes secrets), without its trailing newline."""
    path = os.environ.get(name + "_FILE")
    if path:
        with open(path, encoding="utf-8") as file:
            return file.read().removesuffix("\n")
    return os.environ.get(name) or default


HOST = setting("HOST", "127.0.0.1")  # behind botgate in the same pod or host: loopback only
PORT = int(setting("PORT", "8081"))
WEBHOOK_PATH = setting("WEBHOOK_PATH", "/webhook")
# botgate's upstream.secret_token. During a rotation, "new,old": either is accepted (a secret
# token has no commas: Telegram's charset is A-Z a-z 0-9 _ -).
UPSTREAM_SECRETS = [s.encode() for s in (setting("BOTGATE_UPSTREAM_SECRET") or "").split(",") if s]
HS256_KEY = setting("BOTGATE_HS256_KEY")  # botgate's upstream.sign key (alg HS256)
AUDIENCE = setting("BOTGATE_AUDIENCE")  # the aud botgate signs: the bot's name in its config
ISSUER = setting("BOTGATE_ISSUER", "botgate")
LEEWAY = 5  # seconds of clock difference tolerated between botgate and this host
MAX_BODY = 1 << 20  # updates are a few KiB; botgate's own limit is lower still

if not UPSTREAM_SECRETS and not HS256_KEY:
    sys.exit("set BOTGATE_UPSTREAM_SECRET and/or BOTGATE_HS256_KEY: without either, anyone could post updates")
if HS256_KEY and not AUDIENCE:
    sys.exit("set BOTGATE_AUDIENCE to the bot's name in botgate's config (the aud of its tokens)")


class Refused(Exception):
    """The request did not come through botgate (or not for this bot): answer 401."""


def check_secret(headers):
    values = headers.get_all("X-Telegram-Bot-Api-Secret-Token") or []
    # compare_digest takes as long for a near miss as for a wild guess: no timing side channel.
    if len(values) != 1 or not any(hmac.compare_digest(values[0].encode(), s) for s in UPSTREAM_SECRETS):
        raise Refused("bad secret token")


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


seen_jti = {}  # jti -> exp: a token is good for one request
seen_lock = threading.Lock()


def first_use(jti, exp):
    now = time.time()
    with seen_lock:
        for old in [j for j, until in seen_jti.items() if until + LEEWAY < now]:
            del seen_jti[old]
        if jti in seen_jti:
            return False
        seen_jti[jti] = exp
        return True


def check_token(headers, body):
    """Verifies botgate's HS256 JWT for this body; returns its claims."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise Refused("no token")
    try:
        header_part, claims_part, signature_part = auth[len("Bearer ") :].split(".")
        header = json.loads(b64url(header_part))
        signature = b64url(signature_part)
    except ValueError:
        raise Refused("malformed token") from None
    # The algorithm is pinned here, never taken from the token ("alg": "none" and friends).
    if header.get("alg") != "HS256":
        raise Refused("unexpected alg")
    signed = f"{header_part}.{claims_part}".encode()
    expected = hmac.new(HS256_KEY.encode(), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise Refused("bad signature")
    try:
        claims = json.loads(b64url(claims_part))
    except ValueError:
        raise Refused("malformed claims") from None
    now = time.time()
    audience = claims.get("aud")
    if claims.get("iss") != ISSUER:
        raise Refused("wrong issuer")
    if audience != AUDIENCE and not (isinstance(audience, list) and AUDIENCE in audience):
        raise Refused("wrong audience")  # a token botgate made for another bot
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] + LEEWAY < now:
        raise Refused("expired")
    if not isinstance(claims.get("iat"), (int, float)) or claims["iat"] - LEEWAY > now:
        raise Refused("issued in the future")
    if not isinstance(claims.get("update_id"), int) or not isinstance(claims.get("jti"), str):
        raise Refused("update_id and jti are required")
    # The signature covers the claims and body_sha256 covers the body: hash the exact bytes
    # received, before any JSON parsing (base64url of SHA-256, no padding).
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
    if not hmac.compare_digest(str(claims.get("body_sha256", "")).encode(), digest):
        raise Refused("body_sha256 does not match the body")
    if not first_use(claims["jti"], claims["exp"]):
        raise Refused("token already used")
    return claims


def answer(update):
    """The bot itself: a webhook reply for the update, or None for no reply."""
    message = update.get("message")
    if message and "text" in message:
        text = message["text"]
        if text.split(" ")[0].split("@")[0] == "/start":
            text = "Hello! Send me anything and I will send it back."
        return {"method": "sendMessage", "chat_id": message["chat"]["id"], "text": text}
    query = update.get("callback_query")
    if query:
        return {"method": "answerCallbackQuery", "callback_query_id": query["id"], "text": "Got it"}
    return None


class Webhook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botgate reuses its connections

    def do_POST(self):
        if self.path != WEBHOOK_PATH:
            return self.send(404, b'{"ok":false}')
        length = self.headers.get("Content-Length", "")
        length = int(length) if length.isdigit() else -1
        if not 0 <= length <= MAX_BODY:
            return self.send(413, b'{"ok":false}')
        body = self.rfile.read(length)
        try:
            if UPSTREAM_SECRETS:
                check_secret(self.headers)
            claims = check_token(self.headers, body) if HS256_KEY else None
            update = json.loads(body)
            if claims and claims["update_id"] != update.get("update_id"):
                raise Refused("update_id does not match the body")
        except (Refused, ValueError) as problem:
            print(f"refused: {problem}", file=sys.stderr, flush=True)
            return self.send(401, b'{"ok":false}')
        print(f"update {update.get('update_id')} accepted", flush=True)
        reply = answer(update)
        self.send(200, json.dumps(reply).encode() if reply else b"")

    def send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per update above; nothing about requests that might carry secrets


if __name__ == "__main__":
    # As a container's PID 1, SIGTERM has no default action: exit on it explicitly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer((HOST, PORT), Webhook)
    print(f"listening on {HOST}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
