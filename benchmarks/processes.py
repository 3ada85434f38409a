"""What the benchmarks (and the live tests) that start servers share: a free port, waiting for a
server to answer, and the resident memory of a process tree."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, seconds: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Until `url` answers 200; fails at once if `process` exits (with the end of its `log`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{url} exited:\n{log.read_text()[-3000:] if log else ''}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} not up within {seconds} s:\n{log.read_text()[-3000:] if log else ''}")


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes; /proc/PID/statm is one short line (the sampler runs on
    the server's cores while it is measured)."""
    pages = 0
    for pid in pids:
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except FileNotFoundError:
            pass
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds(pids: list[int]) -> float:
    """CPU time these processes used so far, their waited-for children's included (/proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")
