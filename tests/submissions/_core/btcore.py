"""A small implementation of the original assignment, as a student might
write it, for testing the grader (``bluetrace-conform assignment``).

Each folder under ``tests/submissions/`` holds ``server.py`` and ``client.py``
(two-line wrappers), a link to this file and ``variant.py``: the variant's
TCP format, beacon format, texts and its deliberate defects. It is written
the way submissions are (threads, blocking sockets), not the way bluetrace
is; it is test data, never run by the project itself.

The contact log's retention is read from ASSIGNMENT_RETENTION (default the
assignment's 180 s), so tests need not wait 3 minutes.
"""

import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
from datetime import datetime, timedelta

FORMAT = "%d/%m/%Y %H:%M:%S"
STAMP = r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d"
TEXTS = {
    "welcome": "Welcome to the BlueTrace Simulator!",
    "invalid": "Invalid Password. Please try again",
    "blocked_now": "Invalid Password. Your account has been blocked. Please try again later",
    "blocked": "Your account is blocked due to multiple login failures. Please try again later",
    "no_user": "Invalid Username. Please try again",
    "error": "Error. Invalid command",
}


# ---- TCP formats ---------------------------------------------------------------

class Conn:
    """One TCP connection speaking the variant's format; messages are dicts
    of strings."""

    def __init__(self, sock, kind):
        self.sock, self.kind, self.buffer = sock, kind, b""

    def _take(self, count):
        while len(self.buffer) < count:
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buffer += data
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken

    def _line(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def send(self, message):
        if self.kind == "jsonl":
            data = json.dumps(message).encode() + b"\n"
        elif self.kind == "lenjson":
            body = json.dumps(message).encode()
            data = struct.pack(">I", len(body)) + body
        elif self.kind == "text":
            data = "\t".join(f"{k}={v}" for k, v in message.items()).encode() + b"\n"
        else:  # binary: count, then (key length, key, value length, value) per field
            data = struct.pack(">H", len(message))
            for key, value in message.items():
                k, v = key.encode(), str(value).encode()
                data += struct.pack(">B", len(k)) + k + struct.pack(">I", len(v)) + v
        self.sock.sendall(data)

    def recv(self):
        if self.kind in ("jsonl", "text"):
            line = self._line()
            if line is None:
                return None
            if self.kind == "jsonl":
                return json.loads(line)
            return dict(field.split("=", 1) for field in line.decode().split("\t") if field)
        if self.kind == "lenjson":
            head = self._take(4)
            body = None if head is None else self._take(struct.unpack(">I", head)[0])
            return None if body is None else json.loads(body)
        head = self._take(2)
        if head is None:
            return None
        message = {}
        for _ in range(struct.unpack(">H", head)[0]):
            key = self._take(self._take(1)[0]).decode()
            value = self._take(struct.unpack(">I", self._take(4))[0]).decode()
            message[key] = value
        return message


# ---- beacon formats ------------------------------------------------------------

def encode_beacon(kind, tempid, start, expiry):
    if kind == "raw":
        return (tempid + start + expiry).encode() + b"\x01"
    if kind == "raw-text-version":
        return (tempid + start + expiry + "1").encode()
    if kind == "json":
        return json.dumps({"id": tempid, "start": start, "expiry": expiry, "v": 1}).encode()
    return f"{tempid},{start},{expiry},1".encode()


def decode_beacon(kind, data):
    if kind.startswith("raw"):
        text = data[:58].decode()
        return text[:20], text[20:39], text[39:58]
    if kind == "json":
        message = json.loads(data)
        return message["id"], message["start"], message["expiry"]
    tempid, start, expiry, _ = data.decode().split(",")
    return tempid, start, expiry


def now_text():
    return datetime.now().strftime(FORMAT)


# ---- server --------------------------------------------------------------------

def server_main(variant):
    port, block = int(sys.argv[1]), float(sys.argv[2])
    credentials = {}
    with open("credentials.txt") as handle:
        for line in handle.read().splitlines():
            if line.strip():
                user, password = line.strip().split(" ")
                credentials[user] = password
    if variant.get("wipe_tempids"):
        open("tempIDs.txt", "w").close()
    issued, fresh = {}, set()
    if os.path.exists("tempIDs.txt"):
        with open("tempIDs.txt") as handle:
            for line in handle.read().splitlines():
                parts = line.split()
                if len(parts) == 6:
                    issued[parts[1]] = parts[0]
    lock = threading.Lock()
    failures, blocked_until, held = {}, {}, []

    def append_tempid(line):
        with open("tempIDs.txt", "ab") as handle:
            if not variant.get("glued_tempids"):
                handle.seek(0, os.SEEK_END)
                if handle.tell() and not _ends_with_newline("tempIDs.txt"):
                    handle.write(b"\n")
            handle.write(line.encode() + b"\n")

    def serve(sock):
        conn, user, own_failures = Conn(sock, variant["tcp"]), None, 0
        held.append(conn)
        while True:
            message = conn.recv()
            if message is None:
                return
            kind = message["t"]
            if kind == "user":
                conn.send({"r": "ok" if message["user"] in credentials else "nouser"})
            elif kind == "login":
                name, password = message["user"], message["password"]
                with lock:
                    if blocked_until.get(name, 0) > time.time():
                        conn.send({"r": "blocked"})
                        continue
                    if credentials.get(name) == password:
                        failures[name], user = 0, name
                        conn.send({"r": "ok"})
                        print(f"{name} login", flush=True)
                        continue
                    if variant.get("per_connection_failures"):
                        own_failures += 1
                        count = own_failures
                    else:
                        failures[name] = failures.get(name, 0) + 1
                        count = failures[name]
                    if count >= 3:
                        blocked_until[name] = time.time() + block
                        failures[name] = own_failures = 0
                        conn.send({"r": "blocked_now"})
                    else:
                        conn.send({"r": "invalid"})
            elif kind == "download":
                tempid = f"{secrets.randbelow(10**20):020d}"
                start = datetime.now()
                first = start.strftime(FORMAT)
                last = (start + timedelta(seconds=899)).strftime(FORMAT)
                with lock:
                    append_tempid(f"{user} {tempid} {first} {last}")
                    issued[tempid] = user
                    fresh.add(tempid)
                print(f"user: {user}\nTempID: {tempid}", flush=True)
                conn.send({"r": "tempid", "id": tempid, "start": first, "expiry": last})
            elif kind == "upload":
                entries = [e.split(",") for e in message["entries"].split(";") if e]
                if variant.get("crash_on_upload") and any(e[0] in fresh for e in entries):
                    raise KeyError(entries[0][0])  # the defect: this thread dies
                print(f"received contact log from {user}", flush=True)
                for tempid, first, last in entries:
                    print(f"{tempid},\n{first},\n{last};", flush=True)
                print("Contact log checking", flush=True)
                for tempid, first, _ in entries:
                    if tempid in issued:
                        print(f"{issued[tempid]},\n{first},\n{tempid};", flush=True)
                conn.send({"r": "uploaded", "n": str(len(entries))})
            elif kind == "logout":
                print(f"{user} logout", flush=True)
                conn.send({"r": "bye"})
                return

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((variant.get("bind", "127.0.0.1"), port))
    listener.listen()
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


def _ends_with_newline(path):
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


# ---- client --------------------------------------------------------------------

def client_main(variant):
    host, port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    retention = float(os.environ.get("ASSIGNMENT_RETENTION", "180"))
    texts = {**TEXTS, **variant.get("texts", {})}
    sock = socket.create_connection((host, port))
    conn = Conn(sock, variant["tcp"])
    while True:
        user = input("Username: ").strip()
        conn.send({"t": "user", "user": user})
        if conn.recv()["r"] == "ok":
            break
        print(texts["no_user"])
    while True:
        password = input("Password: ").strip()
        conn.send({"t": "login", "user": user, "password": password})
        answer = conn.recv()["r"]
        if answer == "ok":
            print(texts["welcome"])
            break
        if answer in ("blocked", "blocked_now"):
            print(texts[answer])
            sys.exit(0)
        print(texts["invalid"])
    log_name = variant.get("log_name", "{user}_contactlog.txt").format(user=user)
    log_lock = threading.Lock()
    received = []  # (line, time) for lazy removal
    state = {"tempid": None}

    def layout(tempid, start, expiry):
        if variant.get("log_layout") == "comma":
            return f"{tempid},{start},{expiry}"
        if variant.get("log_layout") == "extra":
            return f"{tempid} {start} {expiry} {datetime.now().isoformat(timespec='seconds')}"
        return f"{tempid} {start} {expiry}"

    def remove(line):
        with log_lock:
            if not os.path.exists(log_name):
                return
            with open(log_name) as handle:
                lines = handle.read().splitlines()
            if line in lines:
                lines.remove(line)
            with open(log_name + ".tmp", "w") as handle:
                handle.write("".join(item + "\n" for item in lines))
            os.replace(log_name + ".tmp", log_name)

    def purge():
        for line, at in list(received):
            if time.time() - at >= retention:
                received.remove((line, at))
                remove(line)

    def listen():
        beacons = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        beacons.bind((variant.get("bind", "127.0.0.1"), udp_port))
        while True:
            data, _ = beacons.recvfrom(4096)
            try:
                tempid, start, expiry = decode_beacon(variant["beacon"], data)
                first, last = datetime.strptime(start, FORMAT), datetime.strptime(expiry, FORMAT)
            except (ValueError, KeyError, UnicodeDecodeError):
                continue
            now = datetime.now().replace(microsecond=0)
            valid = first <= now <= last
            print(f"received beacon:\n{tempid},\n{start},\n{expiry}.\nCurrent time is:\n"
                  f"{now.strftime(FORMAT)}.\nThe beacon is {'valid' if valid else 'invalid'}.",
                  flush=True)
            if not valid:
                continue
            if variant.get("lazy_removal"):
                purge()
            line = layout(tempid, start, expiry)
            with log_lock, open(log_name, "a") as handle:
                handle.write(line + "\n")
            if variant.get("lazy_removal"):
                received.append((line, time.time()))
            else:
                timer = threading.Timer(retention, remove, (line,))
                timer.daemon = True
                timer.start()

    threading.Thread(target=listen, daemon=True).start()
    while True:
        command = input("> ").strip()
        if command == "Download_tempID":
            conn.send({"t": "download"})
            answer = conn.recv()
            state["tempid"] = (answer["id"], answer["start"], answer["expiry"])
            print(f"TempID: {answer['id']}")
        elif command == "Upload_contact_log":
            if variant.get("lazy_removal"):
                purge()
            text = ""
            if os.path.exists(log_name):
                with open(log_name) as handle:
                    text = handle.read()
            entries = re.findall(rf"(\d{{20}})\D+?({STAMP})\D+?({STAMP})", text)
            for tempid, first, last in entries:
                print(f"{tempid},\n{first},\n{last};")
            conn.send({"t": "upload", "entries": ";".join(",".join(e) for e in entries)})
            answer = conn.recv()
            print(f"Contact log uploaded ({answer['n']} entries)")
        elif command.startswith("Beacon "):
            _, address, target = command.split()
            if state["tempid"] is None and not variant.get("crash_on_early_beacon"):
                print("No TempID yet: use Download_tempID first")
                continue
            tempid, start, expiry = state["tempid"]  # the defect: None when none yet
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.sendto(encode_beacon(variant["beacon"], tempid, start, expiry),
                       (address, int(target)))
            out.close()
            print(f"{tempid},\n{start},\n{expiry}.")
        elif command == "logout":
            conn.send({"t": "logout"})
            conn.recv()
            print("Logged out. Bye!")
            os._exit(0)
        else:
            print(texts["error"])
