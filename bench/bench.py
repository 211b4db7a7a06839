"""Measures, side by side in one run, how fast task runs get from the Databricks API into Postgres.

Contenders, alternated and repeated (medians reported):
  floor       a minimal Rust client that downloads every page and finds each next token
  ext count   SELECT count(*) through the extension
  ext COPY    COPY (SELECT * FROM task_runs WHERE ...) TO '/dev/null'
  local COPY  the same rows COPYed from an ordinary table (what Postgres itself costs)
  SDK list    WorkspaceClient.clean_room_task_runs.list(), materialised in Python
  SDK+COPY    the same, loaded into a Postgres table with COPY (a user's ETL script)
Plus: a room sent as one page (as the service sends runs): count(*) and LIMIT 1 against the
floor's download and validation of that page; 8 rooms against 1 with 50 ms per request; 500
single-page queries in one session against the floor's per-request time; for the big scans, the
backend's peak RSS and the CPU time of each of its threads (the backend's own, the I/O thread).

Run through bench/run.sh, which starts the cluster and the simulators.
"""
import argparse
import math
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time

TOKEN = "dapi-simulator-token"
HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = """clean_room_name text, deployment_name text, notebook_name text, notebook_etag text,
  notebook_updated_at bigint, notebook_job_run_state jsonb, output_schema_name text,
  output_schema_expiration_time bigint, shared_output_schema_name text,
  shared_output_schema_expiration_time bigint, run_duration bigint, start_time bigint,
  collaborator_job_run_info jsonb"""


class Bench:
    def __init__(self, args):
        self.a = args
        self.sim = f"http://127.0.0.1:{args.sim_port}"
        self.sim_lat = f"http://127.0.0.1:{args.sim_lat_port}"
        self.sim_wide = f"http://127.0.0.1:{args.sim_wide_port}"
        self.sim_one = f"http://127.0.0.1:{args.sim_one_port}"
        self.psql_base = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(args.pg_port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        self.python = sys.executable

    def psql(self, sql, db="bench"):
        out = subprocess.run(self.psql_base + ["-d", db, "-At", "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def timed(self, cmd, **kw):
        started = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
        return time.perf_counter() - started, out.stdout.strip()

    def setup(self):
        self.psql("DROP DATABASE IF EXISTS bench", db="postgres")
        self.psql("CREATE DATABASE bench", db="postgres")
        self.psql(f"""
            CREATE EXTENSION databricks_fdw;
            CREATE SERVER sim FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '{self.sim}', deployment_name 'dbc-bench');
            CREATE USER MAPPING FOR CURRENT_USER SERVER sim OPTIONS (token '{TOKEN}');
            CREATE FOREIGN TABLE task_runs ({COLUMNS}) SERVER sim OPTIONS (resource 'task_runs', page_size '100');
            CREATE SERVER lat FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '{self.sim_lat}', deployment_name 'dbc-lat');
            CREATE USER MAPPING FOR CURRENT_USER SERVER lat OPTIONS (token '{TOKEN}');
            CREATE FOREIGN TABLE task_runs_lat ({COLUMNS}) SERVER lat OPTIONS (resource 'task_runs', page_size '100');
            CREATE SERVER wide FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '{self.sim_wide}', deployment_name 'dbc-wide');
            CREATE USER MAPPING FOR CURRENT_USER SERVER wide OPTIONS (token '{TOKEN}');
            CREATE FOREIGN TABLE task_runs_wide ({COLUMNS}) SERVER wide OPTIONS (resource 'task_runs', page_size '100');
            CREATE SERVER one FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '{self.sim_one}', deployment_name 'dbc-one');
            CREATE USER MAPPING FOR CURRENT_USER SERVER one OPTIONS (token '{TOKEN}');
            CREATE FOREIGN TABLE task_runs_one ({COLUMNS}) SERVER one OPTIONS (resource 'task_runs');
            CREATE TABLE sdk_runs ({COLUMNS.replace('deployment_name text, ', '')});
        """)
        for room in ("bench_small", "bench_big"):
            # The floor's first pass also makes the simulator render and keep every page.
            self.floor(room)
            self.psql(f"CREATE TABLE local_{room} AS SELECT * FROM task_runs WHERE clean_room_name = '{room}'")
        for i in range(8):
            self.floor(f"lat_{i}", sim=self.sim_lat)
        self.floor("one_page", sim=self.sim_one)
        self.psql("CREATE TABLE local_bank AS SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'")

    # --- contenders -----------------------------------------------------------------------
    def floor(self, room, repeat=1, sim=None, validate=False):
        secs, out = self.timed([self.a.floor, sim or self.sim, TOKEN, room, "100", str(repeat)] + (["validate"] if validate else []))
        pages, nbytes, _ = out.split()
        return secs, {"pages": int(pages), "bytes": int(nbytes)}

    def ext_count(self, room):
        secs, out = self.timed(self.psql_base + ["-d", "bench", "-At", "-c", f"SELECT count(*) FROM task_runs WHERE clean_room_name = '{room}'"])
        return secs, int(out)

    def copy(self, source):
        secs, out = self.timed(self.psql_base + ["-d", "bench", "-c", f"COPY ({source}) TO '/dev/null'"])
        return secs, None

    def ext_copy(self, room):
        return self.copy(f"SELECT * FROM task_runs WHERE clean_room_name = '{room}'")

    def local_copy(self, room):
        return self.copy(f"SELECT * FROM local_{room}")

    def sdk(self, mode, room):
        cmd = [self.python, os.path.join(HERE, "sdk_contender.py"), mode, self.sim, TOKEN, room]
        if mode == "copy":
            cmd.append(str(self.a.pg_port))
        secs, out = self.timed(cmd)
        return secs, int(out.splitlines()[-1])

    # --- scenarios ------------------------------------------------------------------------
    def alternate(self, contenders, repeats):
        """Runs each contender in turn, `repeats` rounds; returns medians and the last outputs."""
        times = {name: [] for name, _ in contenders}
        outputs = {}
        for _ in range(repeats):
            for name, fn in contenders:
                secs, out = fn()
                times[name].append(secs)
                outputs[name] = out
        return {n: statistics.median(t) for n, t in times.items()}, outputs

    def rooms(self, room, runs, repeats, with_sdk):
        contenders = [
            ("floor", lambda: self.floor(room)),
            ("ext count", lambda: self.ext_count(room)),
            ("ext COPY", lambda: self.ext_copy(room)),
            ("local COPY", lambda: self.local_copy(room)),
        ]
        if with_sdk:
            contenders += [("SDK list", lambda: self.sdk("list", room)), ("SDK+COPY", lambda: self.sdk("copy", room))]
        medians, outputs = self.alternate(contenders, repeats)
        assert outputs["ext count"] == runs, f"extension counted {outputs['ext count']} of {runs}"
        if with_sdk:
            assert outputs["SDK list"] == runs and outputs["SDK+COPY"] == runs
            assert int(self.psql("SELECT count(*) FROM sdk_runs")) == runs
        assert int(self.psql(f"SELECT count(*) FROM local_{room}")) == runs
        return medians, outputs["floor"]

    def latency(self, repeats):
        rooms = ", ".join(f"'lat_{i}'" for i in range(8))
        one = lambda: self.timed(self.psql_base + ["-d", "bench", "-At", "-c", "SELECT count(*) FROM task_runs_lat WHERE clean_room_name = 'lat_0'"])
        eight = lambda: self.timed(self.psql_base + ["-d", "bench", "-At", "-c", f"SELECT count(*) FROM task_runs_lat WHERE clean_room_name IN ({rooms})"])
        medians, outputs = self.alternate([("1 room", one), ("8 rooms", eight)], repeats)
        assert int(outputs["1 room"]) == self.a.lat and int(outputs["8 rooms"]) == 8 * self.a.lat
        return medians

    def wide(self, repeats, rooms=64, runs=50, concurrency=8, latency=0.05):
        """count(*) over a workspace's every room, against the ideal: one request for the rooms,
        then the rooms' listings in waves of `concurrency`, each one request of `latency`."""
        count = lambda: self.timed(self.psql_base + ["-d", "bench", "-At", "-c", "SELECT count(*) FROM task_runs_wide"])
        medians, outputs = self.alternate([("every room", count)], repeats)
        assert int(outputs["every room"]) == rooms * runs, outputs
        ideal = (1 + math.ceil(rooms / concurrency)) * latency
        return medians["every room"], ideal

    def small_queries(self, repeats, n=500):
        script = "".join("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer';\n" for _ in range(n))
        path = os.path.join(HERE, "work", "small.sql")
        with open(path, "w") as f:
            f.write(script)
        local_path = os.path.join(HERE, "work", "small-local.sql")
        with open(local_path, "w") as f:
            f.write(script.replace("FROM task_runs", "FROM local_bank"))
        ext = lambda: self.timed(self.psql_base + ["-d", "bench", "-At", "-f", path])
        local = lambda: self.timed(self.psql_base + ["-d", "bench", "-At", "-f", local_path])
        floor = lambda: self.floor("bank_x_insurer", repeat=n)
        medians, outputs = self.alternate([("floor", floor), ("ext", ext), ("local", local)], repeats)
        for name in ("ext", "local"):
            counts = outputs[name].split()
            assert len(counts) == n and set(counts) == {"12"}, f"every small query ({name}) returned the room's 12 runs"
        return medians["ext"] / n, medians["floor"] / n, medians["local"] / n

    def one_page(self, runs, repeats):
        """A room whose runs come as one page: count(*), LIMIT 1 and COPY against the floor's
        download and validation of that page."""
        where = "FROM task_runs_one WHERE clean_room_name = 'one_page'"
        query = lambda sql: self.timed(self.psql_base + ["-d", "bench", "-At", "-c", sql])
        contenders = [
            ("floor", lambda: self.floor("one_page", sim=self.sim_one, validate=True)),
            ("ext count", lambda: query(f"SELECT count(*) {where}")),
            ("ext LIMIT 1", lambda: query(f"SELECT notebook_name {where} LIMIT 1")),
            ("ext COPY", lambda: self.copy(f"SELECT * {where}")),
        ]
        medians, outputs = self.alternate(contenders, repeats)
        assert int(outputs["ext count"]) == runs, outputs["ext count"]
        assert outputs["floor"]["pages"] == 1, outputs["floor"]
        assert len(outputs["ext LIMIT 1"].splitlines()) == 1, outputs["ext LIMIT 1"]
        return medians, outputs["floor"]

    def profile(self, sql):
        """Runs `sql` in a backend that has already read a room (its I/O thread started): the
        growth of its peak RSS (MiB), the CPU seconds of each of its threads by name, and the
        wall time."""
        p = subprocess.Popen(self.psql_base + ["-d", "bench", "-At"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        p.stdin.write("SELECT 1 FROM task_runs WHERE clean_room_name = 'bank_x_insurer' LIMIT 1;\nSELECT pg_backend_pid();\n")
        p.stdin.flush()
        p.stdout.readline()
        pid = int(p.stdout.readline())
        hwm = lambda: int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)) / 1024
        before, cpu_before, started = hwm(), thread_cpu(pid), time.perf_counter()
        p.stdin.write(f"{sql};\nSELECT 'done';\n")
        p.stdin.flush()
        while p.stdout.readline().strip() != "done":
            pass
        wall, after, cpu_after = time.perf_counter() - started, hwm(), thread_cpu(pid)
        p.stdin.close()
        p.wait()
        cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        return after - before, cpu, wall


def thread_cpu(pid):
    """CPU seconds (user + system) of each thread of process `pid`, summed by thread name; the
    process's own thread is "backend"."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except FileNotFoundError:
            continue
        name = "backend" if tid == str(pid) else stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def main():
    ap = argparse.ArgumentParser()
    for name in ("pg-port", "sim-port", "sim-lat-port", "sim-wide-port", "sim-one-port", "small", "big", "lat", "one"):
        ap.add_argument(f"--{name}", type=int, required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--command", default="bench/run.sh")
    a = ap.parse_args()
    b = Bench(a)
    b.setup()
    reps_small, reps_big = (1, 1) if a.quick else (5, 3)

    small, small_floor = b.rooms("bench_small", a.small, reps_small, with_sdk=True)
    big, big_floor = b.rooms("bench_big", a.big, reps_big, with_sdk=True)
    one, one_floor = b.one_page(a.one, 1 if a.quick else 5)
    lat = b.latency(1 if a.quick else 5)
    wide, wide_ideal = b.wide(1 if a.quick else 5)
    per_query, per_request, per_local = b.small_queries(1 if a.quick else 3, n=50 if a.quick else 500)
    profiles = [
        (f"COPY of {a.big:,} runs in pages of 100", b.profile(f"COPY (SELECT * FROM task_runs WHERE clean_room_name = 'bench_big') TO '/dev/null'")),
        (f"count(*) of {a.one:,} runs in one page", b.profile("SELECT count(*) FROM task_runs_one WHERE clean_room_name = 'one_page'")),
        (f"COPY of {a.one:,} runs in one page", b.profile("COPY (SELECT * FROM task_runs_one WHERE clean_room_name = 'one_page') TO '/dev/null'")),
    ]
    rss = {name: growth for name, (growth, _, _) in profiles}

    def row(name, m, runs):
        return f"| {name} | {runs:,} | " + " | ".join(f"{m[k]:.3f}" if k in m else "–" for k in ("floor", "ext count", "ext COPY", "local COPY", "SDK list", "SDK+COPY")) + " |"

    sim_rate_pages = big_floor["pages"] / big["floor"]
    sim_rate_mb = big_floor["bytes"] / big["floor"] / 1e6
    one_name, big_name = f"count(*) of {a.one:,} runs in one page", f"COPY of {a.big:,} runs in pages of 100"
    ratios = [
        ("count(*) / floor, one page of %s runs" % f"{a.one:,}", one["ext count"] / one["floor"], "≤ 1.1"),
        ("first row (LIMIT 1) / floor's whole download, one page", one["ext LIMIT 1"] / one["floor"], "≤ 0.1"),
        ("peak RSS growth, count(*) of the one page (MiB)", rss[one_name], "≤ 16"),
        ("peak RSS growth, COPY of the one page (MiB)", rss[f"COPY of {a.one:,} runs in one page"], "≤ 16"),
        ("count(*) / floor, 1M in pages of 100", big["ext count"] / big["floor"], "≤ 1.1"),
        ("count(*) / floor, 10k", small["ext count"] / small["floor"], "(≤ 1.3)"),
        ("COPY / max(floor, local COPY), 1M", big["ext COPY"] / max(big["floor"], big["local COPY"]), "≤ 1.3"),
        ("COPY / (floor + local COPY), 1M", big["ext COPY"] / (big["floor"] + big["local COPY"]), "(≤ 1.3, last round's)"),
        ("SDK+COPY / ext COPY, 1M", big["SDK+COPY"] / big["ext COPY"], "≥ 10"),
        ("SDK+COPY / ext COPY, 10k", small["SDK+COPY"] / small["ext COPY"], "(≥ 5)"),
        ("8 rooms / 1 room, 50 ms latency", lat["8 rooms"] / lat["1 room"], "≤ 1.5"),
        ("count(*) over 64 rooms without WHERE / ideal, 50 ms latency", wide / wide_ideal, "≤ 1.3"),
        ("small query / floor request", per_query / per_request, "≤ 1.5"),
        ("(small query − same query on a local table) / floor request", (per_query - per_local) / per_request, "(what the wrapper adds)"),
        ("peak RSS growth, 1M-run COPY (MiB)", rss[big_name], "≤ 64"),
    ]
    threads = ["| scan | wall | backend thread CPU | I/O thread CPU | other threads CPU | peak RSS growth |", "|---|---|---|---|---|---|"]
    for name, (growth, cpu, wall) in profiles:
        io = sum(v for k, v in cpu.items() if k.startswith("databricks_fdw"))
        other = sum(v for k, v in cpu.items() if k != "backend" and not k.startswith("databricks_fdw"))
        threads.append(f"| {name} | {wall:.3f} s | {cpu.get('backend', 0.0):.2f} s | {io:.2f} s | {other:.2f} s | {growth:.1f} MiB |")
    mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) / 1024 / 1024
    lines = [
        "# Benchmark results" + (" (quick form: correctness only, tiny sizes)" if a.quick else ""),
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} cores, {mem:.0f} GiB memory, {platform.platform()}",
        f"- command: `{a.command}`",
        f"- rooms: {a.small:,} and {a.big:,} runs, 100 per page; medians of {reps_small} and {reps_big} alternated runs; seconds",
        f"- simulator's own rate (the floor's 1M pass): {sim_rate_pages:,.0f} pages/s, {sim_rate_mb:,.0f} MB/s",
        "",
        "| room | runs | floor | ext count | ext COPY | local COPY | SDK list | SDK+COPY |",
        "|---|---|---|---|---|---|---|---|",
        row("small", small, a.small),
        row("big", big, a.big),
        "",
        f"One page ({a.one:,} runs, {one_floor['bytes'] / 1e6:,.0f} MB as one body; floor = download and validate it): floor {one['floor']:.3f} s, "
        f"count(*) {one['ext count']:.3f} s, LIMIT 1 {one['ext LIMIT 1']:.3f} s, COPY {one['ext COPY']:.3f} s.",
        "",
        "Per thread (one run each, in a backend that had read a room before; CPU from /proc/PID/task):",
        "",
    ] + threads + [
        "",
        f"Latency (50 ms per request, {a.lat // 100} pages per room): 1 room {lat['1 room']:.3f} s, 8 rooms {lat['8 rooms']:.3f} s.",
        f"Every room (64 rooms of 50 runs, 50 ms per request, no WHERE): {wide:.3f} s; ideal (1 + 64/8 requests in sequence) {wide_ideal:.3f} s.",
        f"Small queries: {per_query * 1000:.3f} ms per query through psql; the same query on a 12-row local table "
        f"{per_local * 1000:.3f} ms; floor {per_request * 1000:.3f} ms per request.",
        "",
        "| ratio | measured | target |",
        "|---|---|---|",
    ] + [f"| {name} | {value:.2f} | {target} |" for name, value, target in ratios]
    analysis = os.path.join(HERE, "analysis.md")
    if os.path.exists(analysis):
        lines.append(open(analysis).read())
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.quick:
        with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
            f.write(text)
    else:
        with open(os.path.join(HERE, "work", "RESULTS-quick.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
