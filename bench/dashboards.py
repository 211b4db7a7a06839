"""A dashboard's refresh: N sessions, each its own connection (as Superset opens one per query),
run the same query over a workspace of 64 rooms at 50 ms per request, twice (the first load and
a refresh), with cache_ttl. Prints one line per round: label, round, wall seconds, requests that
reached the simulator. bench/run.sh runs it without and with preloading.

    dashboards.py --pg-port P --sim-port S --label L [--sessions 16]
    dashboards.py --report FILE --lines LINES_FILE [--superset FILE]   (appends a section)
"""
import argparse
import json
import subprocess
import time
import urllib.request

TOKEN = "dapi-simulator-token"


def sim_requests(sim, clear=False):
    req = urllib.request.Request(f"{sim}/_sim/requests", method="DELETE" if clear else "GET")
    with urllib.request.urlopen(req) as r:
        return None if clear else len(json.loads(r.read())["requests"])


def run(a):
    sim = f"http://127.0.0.1:{a.sim_port}"
    psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(a.pg_port), "-U", "postgres", "-d", "bench", "-v", "ON_ERROR_STOP=1", "-At"]
    subprocess.run(psql + ["-c", f"""
        DROP SERVER IF EXISTS dash CASCADE;
        CREATE SERVER dash FOREIGN DATA WRAPPER databricks_fdw
          OPTIONS (workspace_url '{sim}', deployment_name 'dbc-dash', cache_ttl '60');
        CREATE USER MAPPING FOR CURRENT_USER SERVER dash OPTIONS (token '{TOKEN}');
        CREATE FOREIGN TABLE task_runs_dash (clean_room_name text, notebook_name text) SERVER dash OPTIONS (resource 'task_runs');"""], check=True)
    for round_ in ("first load", "refresh"):
        sim_requests(sim, clear=True)
        started = time.perf_counter()
        procs = [subprocess.Popen(psql + ["-c", "SELECT count(*) FROM task_runs_dash"], stdout=subprocess.PIPE, text=True) for _ in range(a.sessions)]
        counts = {p.communicate()[0].strip() for p in procs}
        wall = time.perf_counter() - started
        assert all(p.returncode == 0 for p in procs) and len(counts) == 1, counts
        print(f"{a.label}\t{round_}\t{wall:.2f}\t{sim_requests(sim)}\t{counts.pop()}")
    subprocess.run(psql + ["-c", "DROP SERVER dash CASCADE"], check=True)


def report(a):
    lines = [l.split("\t") for l in open(a.lines).read().splitlines() if l.strip()]
    out = ["", "## Dashboards: 16 sessions, one query, 64 rooms at 50 ms per request", "",
           "Each session is its own connection (as Superset opens one per query), all at once, the",
           "same `SELECT count(*)` over every room with `cache_ttl '60'`; then the same again (a refresh).",
           "", "| library | round | wall (s) | requests reaching the API | rows |", "|---|---|---|---|---|"]
    out += [f"| {l[0]} | {l[1]} | {l[2]} | {l[3]} | {l[4]} |" for l in lines]
    if a.superset:
        steps = [l.split("\t") for l in open(a.superset).read().splitlines() if l.startswith(("chart_", "big", "sqllab_"))]
        out += ["", "### Superset 6.1's recorded traffic, replayed (preloaded)", "",
                "Requests each step's queries made (tests/tests/dashboards.rs; `big*`: 64 rooms of 20 runs).", "",
                "| step | requests |", "|---|---|"] + [f"| {s} | {n} |" for s, n in steps]
    with open(a.report, "a") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--pg-port", type=int)
    p.add_argument("--sim-port", type=int)
    p.add_argument("--label")
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--report")
    p.add_argument("--lines")
    p.add_argument("--superset")
    a = p.parse_args()
    report(a) if a.report else run(a)
