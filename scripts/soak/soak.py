#!/usr/bin/python3
"""Chaos soak of issue 21: real RabbitMQ, Azurite and three worker processes under kill -9, one broker
restart, injected storage faults and poison jobs; then exact accounting. Run through scripts/soak/soak.sh
(make soak), which builds the worker and the CLI and brings the services down whatever happens.

Exit 0 when every check holds, 1 on an accounting violation, 2 on a setup failure.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultproxy import FaultProxy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORKER_DLL = ROOT / "src/Worker/bin/Release/net10.0/MambaSt.Batch.Worker.dll"
CLI_DLL = ROOT / "src/Submitter/bin/Release/net10.0/mambast.dll"
MODEL_DIR = ROOT / "tests/fixtures/golden/tiny-sequential"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "soak"
# Every worker pid started, so soak.sh's trap can end them even if this driver is killed hard.
PIDS_FILE = Path(os.environ.get("SOAK_PIDS_FILE", "/dev/null"))
POISON_MARKER = "poison-crash"
QUEUE = "stylize-image"
EVENT_EXCHANGES = {"MambaSt.Batch.Contracts:ImageStylized": "done", "MambaSt.Batch.Contracts:ImageStylizationFailed": "failed"}


def log(msg: str) -> None:
    print(f"[soak {dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {msg}", flush=True)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_string(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


# ---------------------------------------------------------------- blob reads (SharedKey, straight to Azurite)

class Blobs:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}/{ACCOUNT}"

    def _get(self, path: str, query: dict[str, str]) -> bytes:
        date = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
        canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        canon_res = f"/{ACCOUNT}/{ACCOUNT}/{path}" + "".join(f"\n{k.lower()}:{v}" for k, v in sorted(query.items()))
        to_sign = "GET\n" + "\n" * 11 + canon_headers + canon_res
        sig = base64.b64encode(hmac.new(base64.b64decode(ACCOUNT_KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
        headers["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
        url = f"{self.base}/{urllib.parse.quote(path)}" + ("?" + urllib.parse.urlencode(query) if query else "")
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
            return r.read()

    def list(self, prefix: str) -> list[tuple[str, dict[str, str]]]:
        out: list[tuple[str, dict[str, str]]] = []
        marker = ""
        while True:
            q = {"restype": "container", "comp": "list", "prefix": prefix, "include": "metadata", "maxresults": "5000"}
            if marker:
                q["marker"] = marker
            root = ET.fromstring(self._get(CONTAINER, q))
            for b in root.iter("Blob"):
                md = {m.tag: (m.text or "") for m in (b.find("Metadata") or [])}
                out.append((b.findtext("Name") or "", md))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return out

    def read(self, name: str) -> bytes:
        return self._get(f"{CONTAINER}/{name}", {})


# ---------------------------------------------------------------- workers

class Workers:
    """Three worker processes, restarted whenever one exits; peak RSS sampled from /proc/<pid>/status."""

    def __init__(self, n: int, env: dict[str, str], logdir: Path):
        self.env, self.logdir, self.n = env, logdir, n
        self.procs: list[subprocess.Popen | None] = [None] * n
        self.lock = threading.Lock()
        self.starts = 0
        self.kills = 0
        self.exits: Counter[str] = Counter()  # exit status of processes we did not kill
        self.killed_pids: set[int] = set()
        self.peak_hwm_kb = 0
        self.peak_by_pid: dict[int, int] = {}
        self.stopping = False
        self.thread = threading.Thread(target=self._supervise, daemon=True)

    def _start(self, i: int) -> None:
        env = dict(self.env)
        env["Worker__WorkerId"] = f"soak-w{i + 1}"
        env["Health__Port"] = str(free_port())
        logf = open(self.logdir / f"worker-{i + 1}.log", "ab")
        self.procs[i] = subprocess.Popen(["dotnet", str(WORKER_DLL)], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        logf.close()
        self.starts += 1
        with open(PIDS_FILE, "a") as f:
            f.write(f"{self.procs[i].pid}\n")

    def start(self) -> None:
        with self.lock:
            for i in range(self.n):
                self._start(i)
        self.thread.start()

    def _sample(self, pid: int) -> None:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), kb)
                        self.peak_hwm_kb = max(self.peak_hwm_kb, kb)
        except (OSError, ValueError):
            pass

    def _supervise(self) -> None:
        while not self.stopping:
            with self.lock:
                for i, p in enumerate(self.procs):
                    if p is None or self.stopping:
                        continue
                    rc = p.poll()
                    if rc is None:
                        self._sample(p.pid)
                        continue
                    if p.pid not in self.killed_pids:
                        self.exits[f"exit {rc}"] += 1
                        log(f"worker {i + 1} (pid {p.pid}) exited by itself with {rc}; restarting")
                    self._start(i)
            time.sleep(0.5)

    def kill_random(self, rng: random.Random) -> None:
        with self.lock:
            live = [(i, p) for i, p in enumerate(self.procs) if p is not None and p.poll() is None]
            if not live:
                return
            i, p = rng.choice(live)
            self._sample(p.pid)
            self.killed_pids.add(p.pid)
            os.kill(p.pid, signal.SIGKILL)
            self.kills += 1
            log(f"chaos: kill -9 worker {i + 1} (pid {p.pid})")

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            live = [p for p in self.procs if p is not None and p.poll() is None]
            for p in live:
                self._sample(p.pid)
                p.terminate()
            deadline = time.time() + 25
            for p in live:
                try:
                    p.wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


# ---------------------------------------------------------------- broker helpers (pika)

def pika_conn(port: int):
    import pika
    return pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
                                                             connection_attempts=3, retry_delay=1, blocked_connection_timeout=30))


def declare_audit_queue(port: int, batch_id: str, queue: str) -> None:
    """Our own copy of every outcome event of the batch, bound like watch's queue, so duplicates are counted
    independently of watch (which merges them)."""
    conn = pika_conn(port)
    ch = conn.channel()
    ch.exchange_declare("mambast-batch-events", exchange_type="headers", durable=True)
    for ex in EVENT_EXCHANGES:
        ch.exchange_declare(ex, exchange_type="fanout", durable=True)
        ch.exchange_bind("mambast-batch-events", ex)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, "mambast-batch-events", arguments={"x-match": "all", "mambast-batch-id": batch_id})
    conn.close()


def drain_audit_queue(port: int, queue: str) -> list[tuple[str, dict]]:
    conn = pika_conn(port)
    ch = conn.channel()
    events = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        events.append((method.exchange, doc.get("message", doc)))
    ch.queue_delete(queue)
    conn.close()
    return events


def queue_depths(ctl: list[str], env: dict[str, str]) -> dict[str, tuple[int, int]] | None:
    try:
        r = subprocess.run(ctl + ["list_queues", "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"],
                           env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None  # broker down (the restart): unknown, not empty
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out


# ---------------------------------------------------------------- inputs

def make_inputs(folder: Path, jobs: int, poison: int, seed: int) -> None:
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for k in range(jobs):
        w, h = rng.randint(48, 120), rng.randint(48, 120)
        c1 = tuple(rng.randint(0, 255) for _ in range(3))
        c2 = tuple(rng.randint(0, 255) for _ in range(3))
        img = Image.linear_gradient("L").resize((w, h))
        Image.composite(Image.new("RGB", (w, h), c1), Image.new("RGB", (w, h), c2), img).save(folder / f"img-{k:06d}.png")
    # Spread through the batch (submit sends in name order), not all at its end.
    for k in range(poison):
        at = int((k + 0.5) * jobs / max(poison, 1))
        Image.new("RGB", (64, 64), (200, 30, 30)).save(folder / f"img-{at:06d}-{POISON_MARKER}.png")


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SOAK_JOBS", "2000")), help="good jobs (poison jobs come on top)")
    ap.add_argument("--poison", type=int, default=5)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--fault-rate", type=float, default=0.30, help="share of storage requests given a fault")
    ap.add_argument("--kill-every", type=float, nargs=2, default=[20.0, 40.0], metavar=("MIN_S", "MAX_S"))
    ap.add_argument("--rabbit-restart-at", type=float, default=0.4, help="restart RabbitMQ once this share of jobs has left the queue (or after 90 s)")
    ap.add_argument("--rss-limit-mib", type=float, default=512.0, help="peak worker RSS (VmHWM) allowed")
    ap.add_argument("--deadline-s", type=float, default=0.0, help="default: 600 s + 1 s per job")
    ap.add_argument("--stall-s", type=float, default=240.0, help="a watch run this long without finishing is stopped and retry-pending run")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "21")))
    ap.add_argument("--workdir", default=str(ROOT / "artifacts/soak"))
    ap.add_argument("--junit", default="", help="also write the checks as a JUnit XML test suite here (make test reads it)")
    a = ap.parse_args()
    code, checks = run(a)
    if a.junit:
        write_junit(Path(a.junit), checks or [("soak ran to its accounting", False, f"setup failed (exit {code}); see the log above")])
    return code


def write_junit(path: Path, checks: list[tuple[str, bool, str]]) -> None:
    """One test case per check, so the closing 'N passed, N failed' of make test counts the soak's checks."""
    suite = ET.Element("testsuite", name="chaos-soak", tests=str(len(checks)), failures=str(sum(1 for _, ok, _ in checks if not ok)),
                       errors="0", skipped="0")
    for check, ok, detail in checks:
        case = ET.SubElement(suite, "testcase", classname="soak", name=check)
        if not ok:
            ET.SubElement(case, "failure", message=f"{check}: {detail}").text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def run(a: argparse.Namespace) -> tuple[int, list[tuple[str, bool, str]]]:

    rabbit_port = int(os.environ["MAMBAST_RABBITMQ_PORT"])
    azurite_port = int(os.environ["MAMBAST_AZURITE_PORT"])
    services = str(ROOT / "scripts/services.sh")
    run_id = f"run-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    batch_id = f"soak-{run_id}"
    work = Path(a.workdir) / run_id
    (work / "logs").mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    deadline_s = a.deadline_s or 600 + a.jobs
    total = a.jobs + a.poison
    base_env = dict(os.environ)
    base_env.update({"DOTNET_CLI_TELEMETRY_OPTOUT": "1", "DOTNET_NOLOGO": "1"})
    ctl = [services, "ctl"]

    log(f"{run_id}: {a.jobs} jobs + {a.poison} poison, {a.workers} workers, fault rate {a.fault_rate}, "
        f"RabbitMQ :{rabbit_port}, Azurite :{azurite_port}, work dir {work}")
    r = subprocess.run([services, "up"], env=base_env, capture_output=True, text=True)
    if r.returncode != 0:
        log(f"services did not start: {r.stderr.strip()}")
        return 2, []

    proxy = FaultProxy(azurite_port, 0.0, seed=a.seed).start()
    workers: Workers | None = None
    procs: list[subprocess.Popen] = []
    watch_proc: list[subprocess.Popen | None] = [None]
    try:
        log(f"fault proxy on 127.0.0.1:{proxy.port} -> Azurite :{azurite_port}")
        inputs = work / "inputs"
        make_inputs(inputs, a.jobs, a.poison, a.seed)
        make_style(work / "style.png")

        broker_url = f"amqp://guest:guest@127.0.0.1:{rabbit_port}/"
        cli_env = dict(base_env, Broker__Url=broker_url, Storage__ConnectionString=connection_string(azurite_port),
                       XDG_STATE_HOME=str(work / "state"))
        worker_env = dict(base_env, **{
            "Broker__Url": broker_url,
            "Storage__ConnectionString": connection_string(proxy.port),
            "Inference__ModelDirectory": str(MODEL_DIR),
            "Inference__IntraOpThreads": "1",
            "Worker__QueueName": QUEUE,
            "Worker__BatchMessageLimit": "8",
            "Worker__BatchTimeLimitMs": "100",
            "Worker__ConcurrentBatches": "1",
            "Worker__PrefetchCount": "8",
            "Worker__RedeliveryDelaysSeconds__0": "2",
            "Worker__RedeliveryDelaysSeconds__1": "5",
            "Worker__RedeliveryDelaysSeconds__2": "10",
            "Worker__StopTimeoutSeconds": "20",
            "Worker__CrashOnContentMarker": POISON_MARKER,
            "Logging__LogLevel__Default": "Warning",
            "Logging__LogLevel__MambaSt": "Information",
        })

        audit_queue = f"soak-audit-{run_id}"
        declare_audit_queue(rabbit_port, batch_id, audit_queue)
        workers = Workers(a.workers, worker_env, work / "logs")
        workers.start()
        proxy.set_rate(a.fault_rate)

        output = f"az://{CONTAINER}/{run_id}"
        t_submit = time.time()
        r = subprocess.run(["dotnet", str(CLI_DLL), "submit", str(inputs), "--style", str(work / "style.png"), "--output", output,
                            "--max-side", "64", "--format", "png", "--batch-id", batch_id],
                           env=cli_env, capture_output=True, text=True)
        (work / "logs/submit.log").write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            log(f"submit failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
            return 2, []
        log(f"submitted {total} jobs in {time.time() - t_submit:.1f} s (batch {batch_id})")

        # Chaos: kill -9 a worker every 20-40 s; one RabbitMQ restart once a share of the jobs left the queue.
        stop_chaos = threading.Event()
        chaos = {"rabbit_restarts": 0, "rabbit_restart_s": None}

        def chaos_loop() -> None:
            next_kill = time.time() + rng.uniform(*a.kill_every)
            t0 = time.time()
            while not stop_chaos.wait(1.0):
                if chaos["rabbit_restarts"] == 0:
                    ready = (queue_depths(ctl, base_env) or {}).get(QUEUE, (total, 0))[0]
                    if ready <= total * (1 - a.rabbit_restart_at) or time.time() - t0 > 90:
                        log(f"chaos: restarting RabbitMQ ({ready} jobs ready in the queue)")
                        t = time.time()
                        rr = subprocess.run([services, "restart-rabbitmq"], env=base_env, capture_output=True, text=True)
                        chaos["rabbit_restarts"] += 1
                        chaos["rabbit_restart_s"] = round(time.time() - t, 1)
                        log(f"chaos: RabbitMQ back after {chaos['rabbit_restart_s']} s (rc {rr.returncode})")
                if time.time() >= next_kill:
                    workers.kill_random(rng)
                    next_kill = time.time() + rng.uniform(*a.kill_every)

        chaos_thread = threading.Thread(target=chaos_loop, daemon=True)
        chaos_thread.start()

        # Watch until every job has an outcome; retry-pending when a watch stalls; give up at the deadline.
        t_watch = time.time()
        watch_runs, retry_pending_runs, finished = 0, [], False
        while time.time() - t_watch < deadline_s:
            watch_runs += 1
            with open(work / "logs/watch.log", "ab") as wl:
                p = subprocess.Popen(["dotnet", str(CLI_DLL), "watch", "--batch-id", batch_id, "--output", output],
                                     env=cli_env, stdout=wl, stderr=subprocess.STDOUT, start_new_session=True)
            watch_proc[0] = p
            try:
                rc = p.wait(timeout=min(a.stall_s, max(1.0, deadline_s - (time.time() - t_watch))))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGINT)
                try:
                    rc = p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    rc = p.wait()
                # retry-pending only for jobs that are really lost: while any copy is still queued, held or
                # delayed, a resend makes a second copy (see docs/reliability.md, "Chaos soak", the smoke finding).
                depths = queue_depths(ctl, base_env)
                held = {n: d for n, d in (depths or {}).items()
                        if (n in (QUEUE, f"{QUEUE}_isolation", f"{QUEUE}_quarantine") or n.startswith(f"{QUEUE}-delay-")) and sum(d) > 0}
                if depths is None or held:
                    log(f"watch run {watch_runs} did not finish in {a.stall_s:.0f} s (rc {rc}); jobs still queued {held}: watching again")
                    continue
                log(f"watch run {watch_runs} did not finish in {a.stall_s:.0f} s (rc {rc}) and the queues are empty; running retry-pending")
                rp = subprocess.run(["dotnet", str(CLI_DLL), "retry-pending", "--batch-id", batch_id, "--output", output,
                                     "--older-than", "1s"], env=cli_env, capture_output=True, text=True)
                (work / f"logs/retry-pending-{len(retry_pending_runs) + 1}.log").write_text(rp.stdout + rp.stderr)
                retry_pending_runs.append((rp.returncode, (rp.stdout + rp.stderr).strip().splitlines()[-1:] or [""]))
                continue
            watch_proc[0] = None
            if rc in (0, 1):
                finished = True
                break
            log(f"watch run {watch_runs} ended with {rc}; watching again")
            time.sleep(2)
        wall_s = time.time() - t_watch
        stop_chaos.set()
        chaos_thread.join(timeout=300)
        log(f"watch {'finished' if finished else 'gave up at the deadline'} after {wall_s:.0f} s ({watch_runs} runs)")

        # Let late duplicates land: the job queue (ready + unacked) and the delay queues empty, or 60 s.
        for _ in range(60):
            depths = queue_depths(ctl, base_env) or {QUEUE: (1, 0)}
            busy = sum(r_ + u for name, (r_, u) in depths.items() if name in (QUEUE, f"{QUEUE}_isolation") or name.startswith(f"{QUEUE}-delay-"))
            if busy == 0:
                break
            time.sleep(1)
        depths = queue_depths(ctl, base_env) or {}
        time.sleep(3)

        # ------------------------------------------------------------ accounting
        rep = subprocess.run(["dotnet", str(CLI_DLL), "report", "--batch-id", batch_id, "--output", output, "--format", "json"],
                             env=cli_env, capture_output=True, text=True)
        (work / "report.json").write_text(rep.stdout)
        rows = json.loads(rep.stdout) if rep.returncode == 0 and rep.stdout.strip() else []
        events = drain_audit_queue(rabbit_port, audit_queue)
        with open(work / "events-audit.jsonl", "w") as f:
            for exchange, msg in events:
                f.write(json.dumps({"exchange": exchange, "message": msg}) + "\n")
        blobs = Blobs(azurite_port)
        listed = blobs.list(f"{run_id}/")
        outputs = {name: md for name, md in listed if not name.startswith(f"{run_id}/_mambast/")}
        ev_files = [name for name, _ in listed if name.startswith(f"{run_id}/_mambast/batches/{batch_id}/events-")]
        recorded = Counter()  # outcome records per job; watch's "output present" lines (it saw the output before the event) apart
        output_present = 0
        (work / "records").mkdir(exist_ok=True)
        for name in ev_files:
            text = blobs.read(name).decode("utf-8", "replace")
            (work / "records" / name.rsplit("/", 1)[1]).write_text(text)
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                    if rec.get("message") == "output present":
                        output_present += 1
                    else:
                        recorded[rec.get("jobId", "")] += 1
                except ValueError:
                    recorded["<malformed>"] += 1

        def g(row: dict, *keys: str):
            for k in keys:
                if k in row:
                    return row[k]
            return None

        status = Counter()
        quarantined, failed_other, done_rows, pending = [], [], [], []
        for row in rows:
            st = str(g(row, "status", "Status")).lower()
            code = g(row, "errorCode", "error_code", "ErrorCode")
            if st == "done":
                done_rows.append(row)
            elif st == "failed" and code == "Quarantined":
                quarantined.append(row)
            elif st == "failed":
                failed_other.append(row)
            else:
                pending.append(row)
            status[st] += 1

        def blob_name(ref: str) -> str:
            ref = urllib.parse.unquote(ref.split("?")[0])
            for pre in (f"az://{CONTAINER}/", f"/{ACCOUNT}/{CONTAINER}/"):
                if pre in ref:
                    return ref.split(pre, 1)[1]
            return ref

        missing, wrong_meta, done_names = [], [], set()
        for row in done_rows:
            name = blob_name(str(g(row, "outputRef", "output_ref", "OutputRef")))
            done_names.add(name)
            md = outputs.get(name)
            jid = str(g(row, "jobId", "job_id", "JobId"))
            if md is None:
                missing.append(jid)
            elif md.get("mambast_job_id") != jid or md.get("mambast_batch_id") != batch_id:
                wrong_meta.append((jid, md.get("mambast_job_id"), md.get("mambast_batch_id")))
        orphans = sorted(set(outputs) - done_names)
        poison_rows = [row for row in rows if POISON_MARKER in str(g(row, "contentRef", "content_ref", "ContentRef"))]
        poison_not_q = [str(g(r_, "jobId", "job_id", "JobId")) for r_ in poison_rows
                        if g(r_, "errorCode", "error_code", "ErrorCode") != "Quarantined"]
        good_quarantined = [str(g(r_, "jobId", "job_id", "JobId")) for r_ in quarantined if POISON_MARKER not in str(g(r_, "contentRef", "content_ref", "ContentRef"))]

        per_job = Counter()
        per_kind = Counter()
        for exchange, msg in events:
            jid = str(msg.get("jobId", ""))
            kind = EVENT_EXCHANGES.get(exchange, exchange)
            if kind == "failed" and msg.get("errorCode") in ("Quarantined", 8):
                kind = "quarantined"
            per_job[jid] += 1
            per_kind[kind] += 1
            if kind == "done" and msg.get("reused"):
                per_kind["done (reused: output found, not recomputed)"] += 1
        dup_events = sum(c - 1 for c in per_job.values() if c > 1)
        dup_jobs = sorted(j for j, c in per_job.items() if c > 1)
        no_event = len({str(g(r_, "jobId", "job_id", "JobId")) for r_ in rows} - set(per_job))
        dup_recorded = sum(c - 1 for c in recorded.values() if c > 1)
        peak_mib = workers.peak_hwm_kb / 1024 if workers else 0.0
        left = {name: d for name, d in depths.items() if sum(d) > 0}

        checks = [
            ("report produced", rep.returncode == 0 and len(rows) > 0, f"rc {rep.returncode}, {len(rows)} rows"),
            ("jobs in the batch = submitted", len(rows) == total, f"{len(rows)} of {total}"),
            ("jobs = done + failed + quarantined", len(rows) == len(done_rows) + len(failed_other) + len(quarantined),
             f"{len(rows)} = {len(done_rows)} + {len(failed_other)} + {len(quarantined)}"),
            ("zero pending", len(pending) == 0, f"{len(pending)} pending" + (f": {[g(r_, 'jobId') for r_ in pending[:10]]}" if pending else "")),
            ("one output per done job", not missing, f"{len(missing)} missing" + (f": {missing[:10]}" if missing else "")),
            ("output metadata names the job and batch", not wrong_meta, f"{len(wrong_meta)} wrong" + (f": {wrong_meta[:5]}" if wrong_meta else "")),
            ("no output without a done job", not orphans, f"{len(orphans)} orphans" + (f": {orphans[:10]}" if orphans else "")),
            ("poison jobs quarantined", len(poison_rows) == a.poison and not poison_not_q,
             f"{len(poison_rows) - len(poison_not_q)} of {a.poison}" + (f"; not: {poison_not_q}" if poison_not_q else "")),
            ("every job has an outcome event", no_event == 0, f"{no_event} without"),
            ("no good job quarantined (isolation)", not good_quarantined,
             f"{len(good_quarantined)}" + (f": {good_quarantined[:10]}" if good_quarantined else "")),
            ("job, isolation and delay queues empty at the end",
             not any(n in (QUEUE, f"{QUEUE}_isolation") or n.startswith(f"{QUEUE}-delay-") for n in left),
             ", ".join(f"{n} {r_}+{u}" for n, (r_, u) in left.items()) or "all empty"),
            (f"peak worker RSS <= {a.rss_limit_mib:.0f} MiB", peak_mib <= a.rss_limit_mib, f"{peak_mib:.0f} MiB (VmHWM)"),
            ("chaos happened (>= 1 kill -9, 1 RabbitMQ restart)", workers.kills >= 1 and chaos["rabbit_restarts"] == 1,
             f"{workers.kills} kills, {chaos['rabbit_restarts']} restart"),
        ]
        info = [
            ("jobs (good + poison)", f"{total} ({a.jobs} + {a.poison})"),
            ("done / failed / quarantined / pending", f"{len(done_rows)} / {len(failed_other)} / {len(quarantined)} / {len(pending)}"),
            ("good jobs quarantined (batch mates of a poison)", f"{len(good_quarantined)}" + (f": {good_quarantined[:10]}" if good_quarantined else "")),
            ("failed (not quarantined), by code", dict(Counter(g(r_, "errorCode", "error_code") for r_ in failed_other)) or "none"),
            ("outcome events seen (audit queue)", f"{len(events)}: " + ", ".join(f"{k} {v}" for k, v in sorted(per_kind.items()))),
            ("duplicate events (audit queue)", f"{dup_events} on {len(dup_jobs)} jobs"),
            ("duplicate outcome records in events-*.jsonl (watch)", f"{dup_recorded} ({sum(recorded.values())} event lines + {output_present} 'output present' lines, {len(ev_files)} files)"),
            ("output blobs", f"{len(outputs)}"),
            ("worker kill -9 / self-exits (poison) / starts", f"{workers.kills} / {sum(workers.exits.values())} {dict(workers.exits)} / {workers.starts}"),
            ("RabbitMQ restarts (seconds down)", f"{chaos['rabbit_restarts']} ({chaos['rabbit_restart_s']} s)"),
            ("storage requests / injected faults / connections reset by killed workers",
             f"{proxy.counts['requests']} / {proxy.counts['pre503'] + proxy.counts['lost'] + proxy.counts['post500']} / {proxy.counts['client_resets']}"),
            ("  503 before / lost response / 500 after (PUT)", f"{proxy.counts['pre503']} / {proxy.counts['lost']} / {proxy.counts['post500']}"),
            ("  of which on create-if-absent PUTs (lost / 500)", f"{proxy.counts['lost_put_if_none_match']} / {proxy.counts['post500_put_if_none_match']}"),
            ("peak RSS per worker process (MiB, max / median)", peak_summary(workers.peak_by_pid)),
            ("watch runs / retry-pending runs", f"{watch_runs} / {len(retry_pending_runs)} {retry_pending_runs or ''}"),
            ("wall time, submit to all outcomes", f"{wall_s:.0f} s ({total / wall_s:.1f} jobs/s)"),
            ("queues at the end (ready+unacked)", ", ".join(f"{n} {r_}+{u}" for n, (r_, u) in sorted(depths.items()) if not n.startswith("soak-audit-")) or "none"),
        ]
        summary = {"run": run_id, "batch": batch_id, "args": vars(a), "checks": [{"check": c, "ok": ok, "detail": d} for c, ok, d in checks],
                   "info": dict(info), "duplicate_event_jobs": dup_jobs, "good_quarantined": good_quarantined,
                   "failed_other": [g(r_, "jobId") for r_ in failed_other], "orphans": orphans, "proxy": proxy.counts}
        (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print()
        print(f"| Soak {run_id} | |")
        print("|---|---|")
        for k, v in info:
            print(f"| {k} | {v} |")
        print()
        print("| Check | Result | Detail |")
        print("|---|---|---|")
        for c, ok, d in checks:
            print(f"| {c} | {'PASS' if ok else '**FAIL**'} | {d} |")
        print()
        failed = [c for c, ok, _ in checks if not ok]
        log(f"{'PASS' if not failed else 'FAIL: ' + '; '.join(failed)} (details in {work}/summary.json)")
        return (0 if not failed else 1), checks
    finally:
        if watch_proc[0] is not None and watch_proc[0].poll() is None:
            watch_proc[0].kill()
        if workers is not None:
            workers.stop()
        proxy.stop()
        subprocess.run([services, "down"], env=base_env, capture_output=True)


def peak_summary(by_pid: dict[int, int]) -> str:
    if not by_pid:
        return "n/a"
    v = sorted(by_pid.values())
    return f"{v[-1] / 1024:.0f} / {v[len(v) // 2] / 1024:.0f} over {len(v)} processes"


def make_style(path: Path) -> None:
    from PIL import Image
    img = Image.radial_gradient("L").resize((64, 64))
    Image.merge("RGB", (img, img.rotate(90), img.rotate(180))).save(path)


if __name__ == "__main__":
    def _term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
