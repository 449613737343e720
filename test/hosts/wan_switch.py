#!/usr/bin/env python3
"""A wide-area network between the hosts of a test lab (test/hosts/netns.ts), in user space.

This machine's kernel has no netem qdisc (tc answers "Specified qdisc kind is unknown" and there
are no modules to load), so this switch does what netem would: each host's interface is a TUN
device whose IP packets come here, and each packet is handed to the destination host's TUN after
its sender's delay, with jitter, loss and reordering, or dropped while either host is cut off.
The kernels' TCP stacks see a real lossy, slow network.

Usage: wan_switch.py TUN=ADDR ...   (one per host: the TUN device to make, the host's address)
It makes the devices (in the namespace it starts in; the lab moves them into the hosts'), prints
"ready" and then reads commands, one JSON object a line, on stdin:
  {"host": ADDR, "delayMs": 25, "jitterMs": 5, "lossPct": 1, "reorderPct": 0, "down": false, "near": false}
(each field optional; the host's outgoing packets), answering "ok" to each. A "near" host's
packets, both ways, are not shaped (a client next to the member it talks to). It exits at EOF.
"""
import fcntl
import heapq
import json
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_QUEUED = 100_000  # packets in flight through the switch; beyond, new ones are dropped (a full buffer)


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    hosts = {}  # address bytes -> {fd, rules}
    by_fd = {}
    for spec in sys.argv[1:]:
        tun, addr = spec.split("=")
        fd = open_tun(tun)
        key = bytes(int(p) for p in addr.split("."))
        host = {"fd": fd, "addr": addr, "delay": 0.0, "jitter": 0.0, "loss": 0.0, "reorder": 0.0, "down": False, "near": False}
        hosts[key] = host
        by_fd[fd] = host
    rng = random.Random(int(os.environ.get("QKV_WAN_SEED", "1")))
    queue = []  # (due, seq, fd, packet)
    seq = 0
    stdin = sys.stdin.buffer
    os.set_blocking(stdin.fileno(), True)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    pending_line = b""
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([stdin.fileno(), *by_fd.keys()], [], [], timeout)
        for fd in readable:
            if fd == stdin.fileno():
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                pending_line += chunk
                while b"\n" in pending_line:
                    line, pending_line = pending_line.split(b"\n", 1)
                    if not line.strip():
                        continue
                    cmd = json.loads(line)
                    key = bytes(int(p) for p in cmd["host"].split("."))
                    h = hosts[key]
                    if "delayMs" in cmd:
                        h["delay"] = cmd["delayMs"] / 1000.0
                    if "jitterMs" in cmd:
                        h["jitter"] = cmd["jitterMs"] / 1000.0
                    if "lossPct" in cmd:
                        h["loss"] = cmd["lossPct"] / 100.0
                    if "reorderPct" in cmd:
                        h["reorder"] = cmd["reorderPct"] / 100.0
                    if "down" in cmd:
                        h["down"] = bool(cmd["down"])
                    if "near" in cmd:
                        h["near"] = bool(cmd["near"])
                    sys.stdout.write("ok\n")
                    sys.stdout.flush()
                continue
            src = by_fd[fd]
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break  # the device went down
                if len(packet) < 20 or packet[0] >> 4 != 4:
                    continue  # IPv4 only
                dst = hosts.get(packet[16:20])
                if dst is None or src["down"] or dst["down"] or len(queue) >= MAX_QUEUED:
                    continue
                delay = 0.0
                if not (src["near"] or dst["near"]):
                    if src["loss"] and rng.random() < src["loss"]:
                        continue
                    delay = src["delay"]
                    if src["jitter"]:
                        delay = max(0.0, delay + rng.uniform(-src["jitter"], src["jitter"]))
                    if src["reorder"] and rng.random() < src["reorder"]:
                        delay = 0.0  # as netem's reorder: this one goes at once, ahead of the delayed
                seq += 1
                heapq.heappush(queue, (time.monotonic() + delay, seq, dst["fd"], packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, fd, packet = heapq.heappop(queue)
            try:
                os.write(fd, packet)
            except OSError:
                pass  # the destination is down or its queue full: lost, as on a wire


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
