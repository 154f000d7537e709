#!/usr/bin/env python3
"""A stand-in for qemu-system-x86_64 in the supervisor's unit tests.

It understands just enough of QEMU's command line (-qmp unix:PATH,...,
-chardev ...,logfile=PATH,..., -netdev tap,...,fd=N) and of QMP to be
supervised. Behaviour is steered by the environment:
  FAKE_QEMU_EXIT_AFTER_MS=N   exit by itself after N ms ...
  FAKE_QEMU_EXIT_CODE=C       ... with status C (default 1)
  FAKE_QEMU_IGNORE_POWERDOWN=1  answer system_powerdown but keep running
  FAKE_QEMU_NO_QMP=1          never open the QMP socket
  FAKE_QEMU_FAIL=CMD          answer the QMP command CMD with an error
It writes "fake-qemu: started", "fd N: <what it is>" for each -netdev fd,
"memory: <the -object>" for a memory backend, "vhost-user N: chardev C" for
each -netdev vhost-user, each hot-plug command it takes and
"fake-qemu: powerdown" to the log file.
"""
import json
import os
import select
import socket
import sys
import time


def option_value(args, name):
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            yield args[i + 1]


def kv(spec, key):
    for part in spec.split(","):
        if part.startswith(key + "="):
            return part[len(key) + 1:]
    return None


def main():
    args = sys.argv[1:]
    qmp_path = None
    for value in option_value(args, "-qmp"):
        qmp_path = value.split(",")[0][len("unix:"):]
    log_path = None
    for value in option_value(args, "-chardev"):
        log_path = kv(value, "logfile") or log_path
    log = open(log_path, "a") if log_path else sys.stderr

    def say(text):
        log.write(text + "\n")
        log.flush()

    say("fake-qemu: started")
    for value in option_value(args, "-netdev"):
        fd = kv(value, "fd")
        if fd is not None:
            try:
                say("fd %s: %s" % (fd, os.readlink("/proc/self/fd/" + fd)))
            except OSError as e:
                say("fd %s: %s" % (fd, e.strerror))
        if value.startswith("vhost-user,"):
            say("vhost-user %s: chardev %s" % (kv(value, "id"), kv(value, "chardev")))
    for value in option_value(args, "-object"):
        say("memory: %s" % value)
    extra = sorted(int(f) for f in os.listdir("/proc/self/fd"))
    say("open fds: %s" % " ".join(str(f) for f in extra))

    exit_after = os.environ.get("FAKE_QEMU_EXIT_AFTER_MS")
    deadline = time.monotonic() + int(exit_after) / 1000.0 if exit_after else None
    exit_code = int(os.environ.get("FAKE_QEMU_EXIT_CODE", "1"))
    ignore_powerdown = os.environ.get("FAKE_QEMU_IGNORE_POWERDOWN") == "1"

    listener = None
    if qmp_path and os.environ.get("FAKE_QEMU_NO_QMP") != "1":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(qmp_path)
        except FileNotFoundError:
            pass
        listener.bind(qmp_path)
        listener.listen(1)
    clients = {}
    fds = {}
    netdevs = {}
    chardevs = {}
    vhost_user_chardevs = {}  # netdev id -> its chardev
    fail = os.environ.get("FAKE_QEMU_FAIL")
    for value in option_value(args, "-netdev"):
        if kv(value, "id") and kv(value, "fd") is not None:
            netdevs[kv(value, "id")] = int(kv(value, "fd"))
        elif value.startswith("vhost-user,"):
            netdevs[kv(value, "id")] = None
            vhost_user_chardevs[kv(value, "id")] = kv(value, "chardev")
    for value in option_value(args, "-chardev"):
        if kv(value, "id"):
            chardevs[kv(value, "id")] = kv(value, "path")
    pending_events = []
    powerdown_at = None
    while True:
        timeout = 0.05
        if deadline is not None and time.monotonic() >= deadline:
            say("fake-qemu: exiting with %d" % exit_code)
            sys.exit(exit_code)
        if powerdown_at is not None and time.monotonic() >= powerdown_at:
            say("fake-qemu: powered off")
            sys.exit(0)
        readers = list(clients) + ([listener] if listener else [])
        ready, _, _ = select.select(readers, [], [], timeout)
        for r in ready:
            if r is listener:
                conn, _ = listener.accept()
                conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, '
                             b'"capabilities": []}}\r\n')
                clients[conn] = b""
                continue
            data, ancdata, _, _ = r.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
            passed = []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    passed += [int.from_bytes(payload[i:i + 4], sys.byteorder)
                               for i in range(0, len(payload) - len(payload) % 4, 4)]
            if not data:
                del clients[r]
                r.close()
                continue
            clients[r] += data
            while b"\n" in clients[r]:
                line, clients[r] = clients[r].split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                command = request.get("execute")
                answer = {"return": {}}
                if command == fail:
                    answer = {"error": {"class": "GenericError", "desc": "%s failed (FAKE_QEMU_FAIL)" % command}}
                elif command == "query-status":
                    answer = {"return": {"status": "running", "singlestep": False, "running": True}}
                elif command == "system_powerdown":
                    say("fake-qemu: powerdown")
                    if not ignore_powerdown:
                        powerdown_at = time.monotonic() + 0.1
                elif command == "quit":
                    r.sendall((json.dumps({"return": {}, "id": request.get("id")}) + "\r\n").encode())
                    sys.exit(0)
                elif command == "getfd":
                    name = request["arguments"]["fdname"]
                    if passed:
                        say("getfd %s: %s" % (name, os.readlink("/proc/self/fd/%d" % passed[0])))
                        fds[name] = passed.pop(0)
                    else:
                        answer = {"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}
                elif command == "chardev-add":
                    a = request["arguments"]
                    if a["id"] in chardevs:
                        answer = {"error": {"class": "GenericError", "desc": "attempt to add duplicate property '%s'" % a["id"]}}
                    else:
                        data = a["backend"]["data"]
                        path = data["addr"]["data"]["path"]
                        chardevs[a["id"]] = path
                        say("chardev-add %s %s path=%s server=%s reconnect=%s" % (a["id"], a["backend"]["type"], path, data.get("server"), data.get("reconnect")))
                elif command == "chardev-remove":
                    cid = request["arguments"]["id"]
                    if chardevs.pop(cid, "missing") == "missing":
                        answer = {"error": {"class": "GenericError", "desc": "Chardev '%s' not found" % cid}}
                    else:
                        say("chardev-remove %s" % cid)
                elif command == "netdev_add" and request["arguments"].get("type") == "vhost-user":
                    a = request["arguments"]
                    if a.get("chardev") not in chardevs:
                        answer = {"error": {"class": "GenericError", "desc": "chardev \"%s\" not found" % a.get("chardev")}}
                    else:
                        say("netdev_add %s vhost-user chardev=%s" % (a["id"], a["chardev"]))
                        netdevs[a["id"]] = None
                        vhost_user_chardevs[a["id"]] = a["chardev"]
                elif command == "netdev_add":
                    a = request["arguments"]
                    if a.get("fd") not in fds:
                        answer = {"error": {"class": "GenericError", "desc": "File descriptor named '%s' has not been found" % a.get("fd")}}
                    else:
                        say("netdev_add %s fd=%s vhost=%s" % (a["id"], a["fd"], a.get("vhost", False)))
                        netdevs[a["id"]] = fds.pop(a["fd"])
                elif command == "device_add":
                    a = request["arguments"]
                    if a.get("netdev") not in netdevs:
                        answer = {"error": {"class": "GenericError", "desc": "Property 'virtio-net-pci.netdev' can't find value '%s'" % a.get("netdev")}}
                    else:
                        say("device_add %s %s netdev=%s mac=%s%s" % (a["driver"], a["id"], a["netdev"], a["mac"],
                                                               " vectors=%s" % a["vectors"] if "vectors" in a else ""))
                elif command == "device_del":
                    say("device_del %s" % request["arguments"]["id"])
                    pending_events.append({"event": "DEVICE_DELETED", "data": {"device": request["arguments"]["id"], "path": "/machine/peripheral/" + request["arguments"]["id"]}})
                elif command == "netdev_del":
                    nid = request["arguments"]["id"]
                    if nid in netdevs:
                        fd = netdevs.pop(nid)
                        if fd is not None:
                            os.close(fd)
                        if nid in vhost_user_chardevs:
                            # As QEMU: a vhost-user netdev deletes its chardev.
                            chardevs.pop(vhost_user_chardevs.pop(nid), None)
                        say("netdev_del %s" % nid)
                    else:
                        answer = {"error": {"class": "GenericError", "desc": "Device '%s' not found" % nid}}
                elif command == "closefd":
                    fds.pop(request["arguments"]["fdname"], None)
                elif command not in ("qmp_capabilities",):
                    answer = {"error": {"class": "CommandNotFound",
                                        "desc": "The command %s has not been found" % command}}
                if "id" in request:
                    answer["id"] = request["id"]
                r.sendall((json.dumps(answer) + "\r\n").encode())
                for event in pending_events:
                    r.sendall((json.dumps(event) + "\r\n").encode())
                pending_events.clear()


if __name__ == "__main__":
    main()
