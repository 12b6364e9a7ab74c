#!/usr/bin/env python3
"""An HTTP/1.1 file server for vmediafs's URL-media tests, with range requests and the faults
the tests need. Serves the files under ROOT; prints the port it listens on (on 127.0.0.1),
then serves until killed. Faults are switched per file by control files beside it, read on
every request, so a test changes behaviour without restarting the server:

  NAME.stall     requests for NAME wait this many seconds (a float) before answering
  NAME.drop      "OFFSET [COUNT]": requests for NAME whose range starts at or after OFFSET get
                 the headers and half the body, then the connection is closed; COUNT times
                 (then the file is removed), or always without COUNT
  NAME.noranges  NAME is served whole (200) whatever the Range header says
  NAME.etag      the ETag to send (default: size and mtime)
  NAME.noetag    send neither ETag nor Last-Modified

Every request is logged to ROOT/requests.log as "METHOD PATH RANGE" (for the tests' counts).
Usage: range_server.py ROOT [PORT]
"""
import http.server
import os
import re
import socketserver
import sys
import time

root = os.path.abspath(sys.argv[1])
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0


def control(path, suffix):
    try:
        with open(path + suffix) as f:
            return f.read().strip()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def serve(self, body):
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = os.path.normpath(os.path.join(root, rel))
        rng = self.headers.get("Range", "")
        with open(os.path.join(root, "requests.log"), "a") as log:
            log.write(f"{self.command} /{rel} {rng or '-'}\n")
        if not path.startswith(root + "/") or not os.path.isfile(path):
            return self.reply(404, b"not found\n", {}, body)
        stall = control(path, ".stall")
        if stall:
            time.sleep(float(stall))
        st = os.stat(path)
        size = st.st_size
        headers = {"Accept-Ranges": "bytes"}
        if control(path, ".noetag") is None:
            headers["ETag"] = control(path, ".etag") or f'"{size:x}-{st.st_mtime_ns:x}"'
            headers["Last-Modified"] = self.date_time_string(int(st.st_mtime))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if control(path, ".noranges") is not None or not m:
            headers.pop("Accept-Ranges", None)
            with open(path, "rb") as f:
                return self.reply(200, f.read(), headers, body)
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else size - 1
        last = min(last, size - 1)
        if first >= size or first > last:
            headers["Content-Range"] = f"bytes */{size}"
            return self.reply(416, b"", headers, body)
        with open(path, "rb") as f:
            f.seek(first)
            data = f.read(last - first + 1)
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        drop = control(path, ".drop")
        if drop is not None and first >= int(drop.split()[0]):
            fields = drop.split()
            if len(fields) > 1:
                left = int(fields[1]) - 1
                if left > 0:
                    with open(path + ".drop", "w") as f:
                        f.write(f"{fields[0]} {left}\n")
                else:
                    os.unlink(path + ".drop")
            self.send_response(206)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.reply(206, data, headers, body)

    def reply(self, code, data, headers, body):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", port), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
