#!/usr/bin/env python3
"""An echo bot's webhook behind botgate, with nothing but the Python standard library.

botgate receives Telegram's updates, checks them, and forwards the good ones here. This server
makes sure a request really came through botgate, then answers, in one of two ways, neither of
which needs the bot token:

- a webhook reply (the default): the Bot API call is the HTTP response, which Telegram executes;
- through botgate's egress (BOT_API_ROOT and BOT_CREDENTIAL set): the bot calls the Bot API on
  botgate's egress listener with a local credential, and botgate calls Telegram with the token,
  which only botgate holds. docs/egress.md explains it.

Two checks, each optional, at least one required (see README.md next to this file):

- the upstream secret header: X-Telegram-Bot-Api-Secret-Token equals botgate's
  upstream.secret_token, compared in constant time;
- a signed forward (botgate's upstream.sign with alg HS256): the JWT in Authorization is checked
  (signature, iss, aud, exp, iat, jti used once) and its body_sha256 claim against the exact bytes
  received. docs/upstream-verification.md explains each step.

    BOTGATE_UPSTREAM_SECRET=... PORT=8081 python3 bot.py
    BOTGATE_UPSTREAM_SECRET=... BOT_API_ROOT=http://127.0.0.1:8082 BOT_CREDENTIAL=... python3 bot.py
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
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
# botgate's egress: its listener (egress.listen) and this bot's credential there
# (bots[].egress.credential). Token-shaped, but not the token: it works only against botgate.
API_ROOT = setting("BOT_API_ROOT")
CREDENTIAL = setting("BOT_CREDENTIAL")
MAX_QUEUED = 1000  # calls waiting to go out; past it an update is answered 503 (Telegram retries)
RETRIES = 3  # after a 429 with retry_after: botgate's pacer is busy, or Telegram's flood control
# botgate holds a call for up to egress.pacing.max_wait (30 s by default) before its turn.
CALL_TIMEOUT = 60

if not UPSTREAM_SECRETS and not HS256_KEY:
    sys.exit("set BOTGATE_UPSTREAM_SECRET and/or BOTGATE_HS256_KEY: without either, anyone could post updates")
if HS256_KEY and not AUDIENCE:
    sys.exit("set BOTGATE_AUDIENCE to the bot's name in botgate's config (the aud of its tokens)")
if bool(API_ROOT) != bool(CREDENTIAL):
    sys.exit("set both BOT_API_ROOT (botgate's egress) and BOT_CREDENTIAL, or neither (webhook replies)")


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


class Egress:
    """Bot API calls through botgate's egress, sent in order by one thread. The webhook is
    answered first and the call follows: botgate paces calls to Telegram's flood limits, which
    can hold one for seconds, longer than an update's delivery should wait."""

    def __init__(self, root, credential):
        self.base = f"{root.rstrip('/')}/bot{credential}/"
        self.credential = credential
        self.calls = queue.Queue(maxsize=MAX_QUEUED)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def submit(self, call):
        """Queues a call ({"method": ..., params...}); False when the queue is full."""
        try:
            self.calls.put_nowait(call)
            return True
        except queue.Full:
            return False

    def close(self, timeout):
        """Sends what is queued (waiting at most `timeout` seconds), then stops the thread."""
        try:
            self.calls.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)

    def run(self):
        while (call := self.calls.get()) is not None:
            self.send(call)

    def send(self, call):
        method = call["method"]
        params = {key: value for key, value in call.items() if key != "method"}
        for attempt in range(RETRIES + 1):
            status, answer = self.post(method, params)
            if answer.get("ok") is True:
                print(f"{method} sent", flush=True)
                return
            # Telegram's answer to a flood, and botgate's when a call would wait too long:
            # 429 with parameters.retry_after in seconds (Bot API, ResponseParameters).
            retry_after = (answer.get("parameters") or {}).get("retry_after")
            if status != 429 or not isinstance(retry_after, int) or attempt == RETRIES:
                break
            time.sleep(min(max(retry_after, 1), 60))
        # botgate writes the credential where Telegram's answer had the token: keep it out of logs.
        description = str(answer.get("description", "")).replace(self.credential, "<credential>")
        print(f"{method} failed: {status} {description}", file=sys.stderr, flush=True)

    def post(self, method, params):
        """One call: (HTTP status, the JSON answer); status 0 when botgate could not be reached."""
        request = urllib.request.Request(
            self.base + method,
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=CALL_TIMEOUT) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:  # the Bot API's errors: 4xx with a JSON body
            try:
                return error.code, json.load(error)
            except ValueError:
                return error.code, {}
        except (OSError, ValueError) as error:  # never str(error): it could name the URL
            return 0, {"description": type(error).__name__}


egress = Egress(API_ROOT, CREDENTIAL) if API_ROOT else None


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
        reply = answer(update)
        if reply and egress:
            if not egress.submit(reply):
                # Too much waiting to go out: Telegram delivers the update again later.
                print("update", update.get("update_id"), "deferred: egress queue full", file=sys.stderr, flush=True)
                return self.send(503, b'{"ok":false}', {"Retry-After": "5"})
            reply = None
        print(f"update {update.get('update_id')} accepted", flush=True)
        self.send(200, json.dumps(reply).encode() if reply else b"")

    def send(self, status, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per update above; nothing about requests that might carry secrets


if __name__ == "__main__":
    server = ThreadingHTTPServer((HOST, PORT), Webhook)
    # As a container's PID 1, SIGTERM has no default action: stop on it explicitly. shutdown()
    # waits for serve_forever, which runs in this thread: call it from another.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    mode = "calls through botgate's egress" if egress else "webhook replies"
    print(f"listening on {HOST}:{server.server_address[1]} ({mode})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    if egress:
        egress.close(timeout=10)  # the answers already queued go out first
