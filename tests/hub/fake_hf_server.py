#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub on loopback, for the download tests.

It answers like huggingface.co: HEAD/GET /OWNER/REPO/resolve/REV/PATH redirect
(302) to a second host name, the "CDN" (localhost instead of 127.0.0.1, same
port), with X-Repo-Commit, X-Linked-Etag (the sha256) and X-Linked-Size;
/api/models/OWNER/REPO/tree/REV lists the files; the CDN serves bytes with Range
support. A mode set through /_control/mode?set=NAME makes it misbehave:
  normal    as above
  cut-once  the next body stops half-way (the connection is closed), then normal
  cut       every body stops half-way
  stall     bodies stop half-way and hang until the client goes away
  corrupt   one byte in the middle of every body is wrong
  huge      the resolve endpoint announces a file of 2^60 bytes
/_control/stats returns the requests seen and the body bytes sent;
/_control/reset clears them.

Usage: fake_hf_server.py PORT_FILE [--gated REPO TOKEN] [--file REPO PATH LOCAL_FILE]...
"""
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUGE = 1 << 60

files = {}   # (repo, path) -> bytes
gated = {}   # repo -> token
state = {"mode": "normal", "requests": [], "bytes_served": 0}
lock = threading.Lock()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def by_sha(digest):
    for data in files.values():
        if sha256(data) == digest:
            return data
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        with lock:
            state["requests"].append({
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host", ""),
                "range": self.headers.get("Range", ""),
                "auth": self.headers.get("Authorization", ""),
            })

    def reply(self, status, headers=None, body=b""):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code):
        self.reply(status, {"X-Error-Code": code, "Content-Type": "application/json"},
                   json.dumps({"error": code}).encode())

    def do_HEAD(self):
        self.route()

    def do_GET(self):
        self.route()

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if parts[:1] == ["_control"]:
            return self.control(parts, urllib.parse.parse_qs(url.query))
        self.record()
        if parts[:1] == ["cdn"] and len(parts) == 2:
            return self.cdn(parts[1])
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            return self.tree("/".join(parts[2:4]), parts[5])
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        self.error(404, "NotFound")

    def control(self, parts, query):
        with lock:
            if parts[1:] == ["mode"]:
                state["mode"] = query.get("set", ["normal"])[0]
                body = b"ok"
            elif parts[1:] == ["reset"]:
                state["requests"] = []
                state["bytes_served"] = 0
                body = b"ok"
            else:
                body = json.dumps(state).encode()
        self.reply(200, {"Content-Type": "application/json"}, body)

    def authorized(self, repo):
        token = gated.get(repo)
        return token is None or self.headers.get("Authorization", "") == "Bearer " + token

    def known_repo(self, repo):
        return any(r == repo for (r, _) in files)

    def resolve(self, repo, rev, path):
        if not self.authorized(repo):
            return self.error(401, "GatedRepo")
        if not self.known_repo(repo):
            return self.error(404, "RepoNotFound")
        if rev not in ("main", COMMIT):
            return self.error(404, "RevisionNotFound")
        data = files.get((repo, path))
        if data is None:
            return self.error(404, "EntryNotFound")
        digest = sha256(data)
        size = HUGE if state["mode"] == "huge" else len(data)
        port = self.server.server_address[1]
        self.reply(302, {
            "Location": "http://localhost:%d/cdn/%s" % (port, digest),
            "X-Repo-Commit": COMMIT,
            "X-Linked-Etag": '"%s"' % digest,
            "X-Linked-Size": str(size),
            # The git pointer's etag: a client must prefer X-Linked-Etag.
            "ETag": '"%s"' % hashlib.sha1(b"pointer:" + data).hexdigest(),
        })

    def tree(self, repo, rev):
        if not self.authorized(repo):
            return self.error(401, "GatedRepo")
        if not self.known_repo(repo):
            return self.error(404, "RepoNotFound")
        entries = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": "docs"}]
        for (r, path), data in sorted(files.items()):
            if r == repo:
                digest = sha256(data)
                entries.append({"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data),
                                "path": path, "lfs": {"oid": digest, "size": len(data), "pointerSize": 134}})
        self.reply(200, {"Content-Type": "application/json"}, json.dumps(entries).encode())

    def cdn(self, digest):
        data = by_sha(digest)
        if data is None:
            return self.error(404, "NotFound")
        start = 0
        status = 200
        headers = {"ETag": '"%s"' % digest, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                headers["Content-Range"] = "bytes */%d" % len(data)
                return self.reply(416, headers)
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        with lock:
            mode = state["mode"]
            if mode == "cut-once":
                state["mode"] = "normal"
        if mode == "corrupt":
            mid = len(data) // 2 - start
            if 0 <= mid < len(body):
                body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if mode in ("cut", "cut-once", "stall"):
            half = max(len(data) // 2 - start, 1)
            self.send_body(body[:half])
            if mode == "stall":
                time.sleep(3600)
            self.close_connection = True
            return
        self.send_body(body)

    def send_body(self, body):
        step = 16384
        for i in range(0, len(body), step):
            chunk = body[i:i + step]
            self.wfile.write(chunk)
            self.wfile.flush()
            with lock:
                state["bytes_served"] += len(chunk)


def main():
    args = sys.argv[1:]
    port_file = args.pop(0)
    while args:
        flag = args.pop(0)
        if flag == "--gated":
            repo, token = args.pop(0), args.pop(0)
            gated[repo] = token
        elif flag == "--file":
            repo, path, local = args.pop(0), args.pop(0), args.pop(0)
            with open(local, "rb") as f:
                files[(repo, path)] = f.read()
        else:
            sys.exit("unknown argument " + flag)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
