"""The Label Studio backend under gunicorn against the bare model, one task per request.

Measured in one run, with the real YOLOv8n (OPENAUTOGLM_MODEL_DIR, default ../shared/models):
1. bare: the pipeline called in this process on the same images (decode + propose), alternating
   image by image with the 1-client server requests;
2. a cold start: the server started and hit at once by 8 concurrent requests (errors, model loads);
3. the server at 1 client (p50/p95) and at 8 concurrent clients (200 requests: p50/p95, throughput,
   errors, peak RSS of all server processes);
4. the same number of bare processes side by side on the same images, for the throughput ratio,
   and a second identical set of bare processes as a control: its ratio to the first shows how far
   apart this machine puts two equal sides (process placement alone moves it by a few per cent).
   The machine's speed drifts by 10-20 % within a minute, so 3 and 4 alternate in short rounds
   (bare processes on a chunk and the server on the same chunk, in ABBA order) and the ratio pools
   the rounds. Both throughputs are steady-state, while every client (every bare process) is busy,
   up to the moment the chunk's last request (image) is handed out, and summed over the models
   (server workers, bare processes): each model's completions follow one another back to back,
   so its rate is its completions after its first one over the time from its first to its last.
   Counting all completions from the chunk's start instead depends on where each model is in its
   image at the two ends, which differs between the sides (the server has 8 requests in flight and
   decodes queued ones ahead); the server's access log says which worker answered each request.
Images are served over HTTP by a local file server standing in for Label Studio.

    python benchmarks/serve_bench.py [--workers 2] [--threads 4] [--requests 200]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from processes import free_port, rss_mb  # beside this script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IMAGES = SHARED / "data" / "coco128-train" / "images"
# Student's t, two-sided 95 %, for 1-30 degrees of freedom (2.0 beyond: within 2 % of the exact value)
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="person"/><Label value="car"/><Label value="bus"/><Label value="dog"/>'
          '</RectangleLabels></View>')


def serve_images() -> str:
    class Quiet(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Label Studio behind nginx/uwsgi: 0.8 ms less CPU per download

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(IMAGES)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def rate_per_model(completions: dict, cut: float) -> float:
    """Sum over models of (completions after its first) / (time from its first to its last), for
    the completions up to `cut`: the steady-state rate, whatever phase each model is in at either end."""
    rate = 0.0
    for times in completions.values():
        times = sorted(t for t in times if t <= cut)
        if len(times) >= 2:
            rate += (len(times) - 1) / (times[-1] - times[0])
    return rate


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


class BarePipeline:
    """The same pipeline the server loads, called in this process: decode + propose."""

    def __init__(self):
        from openautoglm.converters.files import load_displayed
        from openautoglm.model.inference.pipeline import Pipeline

        self.load, self.pipeline = load_displayed, Pipeline.load("yolo")
        self.labels = ["person", "car", "bus", "dog"]
        self(next(IMAGES.glob("*.jpg")).name)  # warm-up

    def __call__(self, name: str) -> float:
        started = time.perf_counter()
        self.pipeline.propose([self.load(IMAGES / name)], self.labels)
        return time.perf_counter() - started


class BareProcesses:
    """`count` bare pipelines in their own processes, loaded once. A chunk of images is dealt out
    one image at a time to whichever process is free (as the server's shared listen queue does),
    and the chunk's img/s and CPU seconds per image come back; `decode_cpu` and `propose_cpu` sum
    the thread CPU seconds of the two steps over every image so far."""

    SCRIPT = ("import sys, time; from pathlib import Path; from openautoglm.converters.files import load_displayed; "
              "from openautoglm.model.inference.pipeline import Pipeline; p = Pipeline.load('yolo'); d = "
              "Path(sys.argv[1]); "
              "labels = ['person', 'car', 'bus', 'dog']\n"
              "for line in sys.stdin:\n"
              "    c, a = time.process_time(), time.thread_time(); image = load_displayed(d / line.strip())\n"
              "    b = time.thread_time(); p.propose([image], labels)\n"
              "    print(time.process_time() - c, b - a, time.thread_time() - b, flush=True)")

    def __init__(self, count: int):
        self.processes = [subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(IMAGES)], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                          for _ in range(count)]
        self.decode_cpu = self.propose_cpu = 0.0
        self.run(sorted(p.name for p in IMAGES.glob("*.jpg"))[:len(self.processes)])  # loaded and warm

    def run(self, names: list[str]) -> tuple[float, float]:
        """Steady-state img/s (up to the moment the last image is dealt, while every process is
        busy; the drain after it is left out, as for the server) and CPU seconds per image."""
        waiting, busy, cpu, cut = list(reversed(names)), {}, 0.0, None
        completions = {process.pid: [] for process in self.processes}
        with selectors.DefaultSelector() as selector:
            for process in self.processes:
                selector.register(process.stdout, selectors.EVENT_READ, process)
                self._give(process, waiting, busy)
            while busy:
                for key, _ in selector.select():
                    process_cpu, decode_cpu, propose_cpu = map(float, key.fileobj.readline().split())
                    cpu, self.decode_cpu, self.propose_cpu = (cpu + process_cpu, self.decode_cpu + decode_cpu,
                                                              self.propose_cpu + propose_cpu)
                    completions[key.data.pid].append(time.perf_counter())
                    del busy[key.data.pid]
                    self._give(key.data, waiting, busy)
                    if not waiting and cut is None:
                        cut = time.perf_counter()
        return rate_per_model(completions, cut), cpu / len(names)

    @staticmethod
    def _give(process: subprocess.Popen, waiting: list[str], busy: dict) -> None:
        if waiting:
            process.stdin.write(waiting.pop() + "\n")
            process.stdin.flush()
            busy[process.pid] = True

    def close(self) -> None:
        for process in self.processes:
            process.stdin.close()
            process.wait(timeout=30)


def post_predict(port: int, image_url: str, task_id: int) -> tuple[float, int]:
    """One /predict as Label Studio sends it, over a bare socket: the client (Label Studio's role)
    shares the 2 cores with the server, and http.client's machinery cost 1.7x the CPU (0.35 against
    0.20 ms per request against a server with an instant model). The server closes the connection
    after answering (keep-alive 0), which ends the reply."""
    body = json.dumps({"tasks": [{"id": task_id, "data": {"image": image_url}}], "label_config": CONFIG,
                       "params": {"login": None, "password": None, "context": None}}).encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Bench-Request: {task_id}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(head + body)
            chunks = []
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
        status_line, _, rest = b"".join(chunks).partition(b"\r\n")
        answer = json.loads(rest.partition(b"\r\n\r\n")[2])
        ok = status_line.split()[1] == b"200" and len(answer["results"]) == 1
    except Exception:
        ok = False
    return time.perf_counter() - started, int(not ok)


def run_clients(port: int, workload: list[str], indices,
                clients: int) -> tuple[list[tuple[float, int]], dict[str, float], float]:
    """`clients` closed-loop clients over these requests: (latency, error) per request, when each
    request's answer came (by its X-Bench-Request id) and when the last request was sent."""
    pending, lock = list(reversed(indices)), threading.Lock()
    outcomes, ends, last_sent = [], {}, [0.0]

    def client() -> None:
        while True:
            with lock:
                if not pending:
                    return
                index = pending.pop()
                last_sent[0] = time.perf_counter()
            request = 1000 + index
            outcome = post_predict(port, f"/{workload[index]}", request)
            with lock:
                outcomes.append(outcome)
                ends[str(request)] = time.perf_counter()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, ends, last_sent[0]


def server_steady_rate(ends: dict[str, float], last_sent: float, access_log: Path) -> float:
    """Steady-state req/s up to the moment the last request was sent, while every client is busy
    (the drain is left out): `rate_per_model` over the workers the access log names per request."""
    worker = dict(line.split() for line in access_log.read_text().splitlines() if line.count(" ") == 1)
    completions: dict[str, list[float]] = {}
    for request, end in ends.items():
        if request in worker:
            completions.setdefault(worker[request], []).append(end)
    return rate_per_model(completions, last_sent)


def geometric_interval(ratios: list[float]) -> str:
    """Geometric mean of per-round ratios with a 95 % interval (t on the logs). The machine's speed
    moves by about 10 % from one 2.5 s window to the next, so a 25-request round's ratio scatters
    by about 12 %: 8 rounds give an interval of +-10 %, 192 rounds (--requests 4800 --rounds 192,
    about 30 minutes) about +-2 %."""
    if len(ratios) < 3:
        return ""
    logs = [math.log(r) for r in ratios]
    half = (T_975[len(logs) - 2] if len(logs) <= 31 else 2.0) * statistics.stdev(logs) / math.sqrt(len(logs))
    mean = statistics.fmean(logs)
    return (f"; geometric mean {math.exp(mean):.3f}, 95 % interval "
            f"{math.exp(mean - half):.3f}-{math.exp(mean + half):.3f}")


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def server_pids(master: int) -> list[int]:
    return [master] + [int(p) for p in subprocess.run(["pgrep", "-P", str(master)], capture_output=True,
                                                      text=True).stdout.split()]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("OPENAUTOGLM_MODEL_DIR", str(SHARED / "models"))
    names = sorted(p.name for p in IMAGES.glob("*.jpg"))
    image_host = serve_images()
    work = Path(tempfile.mkdtemp(prefix="openautoglm-serve-bench-"))
    access_log = work / "access.log"  # which worker answered each request: '<X-Bench-Request> <pid>'
    env = {**os.environ, "LABEL_STUDIO_URL": image_host, "OPENAUTOGLM_STORE": str(work / "reviews.sqlite3"),
           "OPENAUTOGLM_CACHE_DIR": str(work / "cache"), "OPENAUTOGLM_CACHE_MAX_MB": "64",
           "GUNICORN_CMD_ARGS": f"--access-logfile {access_log} --access-logformat '%({{x-bench-request}}i)s %(p)s'"}

    workload = [names[i % len(names)] for i in range(args.requests)]
    bare_processes = BareProcesses(args.workers)
    control = BareProcesses(args.workers)  # a second, identical set: how far two equal sides differ here
    bare = BarePipeline()
    port = free_port()
    log = open(work / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1", "--port",
                               str(port), "--workers", str(args.workers), "--threads", str(args.threads)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)  # the gunicorn master listens before its workers have loaded the model
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:  # cold start: 8 requests while the workers are still loading
            cold_errors = sum(e for _, e in pool.map(lambda i: post_predict(port, f"/{names[i]}", i), range(8)))
        loads = (work / "server.log").read_text().count("loaded pipeline")
        print(f"cold start: 8 concurrent requests answered in {time.perf_counter() - started:.1f} s, "
              f"errors {cold_errors}, model loads {loads} for {args.workers} workers")

        # 1 client, alternating with the bare pipeline image by image, so drift in machine speed
        # (large on 2 shared cores) hits both alike; the ratio is the median of per-image ratios.
        pairs = []
        for i, name in enumerate(names[:64]):
            pairs.append((bare(name), post_predict(port, f"/{name}", i)[0]))
        bare_times, single = [b for b, _ in pairs], [s for _, s in pairs]
        ratio = statistics.median(s / b for b, s in pairs)
        print(f"bare pipeline (decode + model, this process): p50 {statistics.median(bare_times) * 1000:.0f} ms")
        print(f"server, 1 client: p50 {statistics.median(single) * 1000:.0f} ms, "
              f"p95 {percentile(single, 0.95) * 1000:.0f} ms; overhead ratio server / bare = {ratio:.3f} "
              f"(median of {len(pairs)} paired requests)")
        peak, sampling = [0.0], threading.Event()
        pids = server_pids(server.pid)  # the workers are up; no restarts expected

        def sample() -> None:
            while True:
                sampling.wait()
                peak[0] = max(peak[0], rss_mb(pids))
                time.sleep(0.5)  # RSS settles once the model is loaded; sampling is the server's CPU too

        threading.Thread(target=sample, daemon=True).start()
        outcomes, server_time, server_wall, bare_time, server_cpu, own_cpu, bare_cpu = [], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        round_ratios, control_time = [], 0.0
        chunk = -(-args.requests // args.rounds)
        for number, start in enumerate(range(0, args.requests, chunk)):
            names_now = workload[start:start + chunk]

            def run_bare() -> float:
                nonlocal bare_time, bare_cpu
                rate, cpu_per_image = bare_processes.run(names_now)
                bare_time, bare_cpu = bare_time + len(names_now) / rate, bare_cpu + cpu_per_image * len(names_now)
                return rate

            def run_server() -> float:
                nonlocal server_time, server_wall, server_cpu, own_cpu, outcomes
                sampling.set()
                cpu_before, own_before, wall = cpu_seconds(pids), cpu_seconds([os.getpid()]), time.perf_counter()
                timed, ends, last_sent = run_clients(port, workload, range(start, start + len(names_now)), 8)
                server_wall += time.perf_counter() - wall
                server_cpu += cpu_seconds(pids) - cpu_before
                own_cpu += cpu_seconds([os.getpid()]) - own_before
                sampling.clear()
                # read after the CPU counters, so parsing the access log is not counted as the harness's cost
                steady = server_steady_rate(ends, last_sent, access_log)
                outcomes += timed
                server_time += len(names_now) / steady
                return steady

            # ABBA order: a drift in machine speed within a round favours neither side
            if number % 2 == 0:
                bare_rate = run_bare()
                round_ratios.append(run_server() / bare_rate)
            else:
                server_rate = run_server()
                round_ratios.append(server_rate / run_bare())
            control_time += len(names_now) / control.run(names_now)[0]
        latencies = [t for t, _ in outcomes]
        errors = sum(e for _, e in outcomes)
        throughput, bare_throughput = args.requests / server_time, args.requests / bare_time
        print(f"server, 8 clients, {args.requests} requests: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, {throughput:.2f} req/s, errors {errors}, "
              f"peak RSS of all server processes {peak[0]:.0f} MB")
        print(f"{args.workers} bare processes side by side on the same images: {bare_throughput:.2f} img/s; "
              f"server throughput / bare = {throughput / bare_throughput:.3f} ({args.rounds} alternating rounds, "
              "steady state)")
        print(f"  per round: {' '.join(f'{r:.3f}' for r in round_ratios)} (median {statistics.median(round_ratios):.3f}"
              f"{geometric_interval(round_ratios)})")
        print(f"  control: a second set of {args.workers} bare processes / the first = {bare_time / control_time:.3f} "
              "(identical sides; how far apart this machine puts them in one run)")
        print(f"  CPU: server {server_cpu / args.requests * 1000:.1f} ms per request, bare "
              f"{bare_cpu / args.requests * 1000:.1f} ms per image; clients + image host "
              f"{own_cpu / args.requests * 1000:.1f} ms per request; the {os.cpu_count()} cores busy "
              f"{(server_cpu + own_cpu) / (server_wall * os.cpu_count()):.0%} of the server's time")
        cache_mb = sum(p.stat().st_size for p in (work / "cache").iterdir()) / 2**20
        print(f"image cache: {cache_mb:.1f} MB on disk (bound 64 MB)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        bare_processes.close()
        control.close()

if __name__ == "__main__":
    main()
