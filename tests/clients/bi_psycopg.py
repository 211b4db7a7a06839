"""What a BI tool does through psycopg (3): open a foreign table without WHERE, read the LIMIT 0
metadata, run a prepared statement many times, fetch through a server-side cursor ten rows at a
time, and refresh a materialized view. Usage: bi_psycopg.py CONNINFO SCHEMA EXPECTED_RUNS."""

import sys

import psycopg

conninfo, schema, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
checks = []


def check(name, ok, detail=""):
    checks.append((name, ok))
    print(f"{'ok' if ok else 'FAILED'}: {name} {detail}")


with psycopg.connect(conninfo, autocommit=True) as conn:
    conn.execute(f"SET search_path = {schema}")
    rows = conn.execute("SELECT * FROM task_runs").fetchall()
    check("open without WHERE", len(rows) == expected, f"({len(rows)} rows)")

    cur = conn.execute("SELECT * FROM task_runs LIMIT 0")
    names = [d.name for d in cur.description]
    check("LIMIT 0 metadata", cur.fetchall() == [] and "clean_room_name" in names and "start_time" in names, str(names[:3]))

    # prepare=True: a named server-side statement, reused.
    counts = {conn.execute("SELECT count(*) FROM task_runs WHERE run_duration > %s", (i % 3,), prepare=True).fetchone()[0] for i in range(25)}
    check("prepared statement x25", all(c > 0 for c in counts), str(sorted(counts)))

    with conn.transaction():
        with conn.cursor(name="bi_portal") as named:
            named.itersize = 10
            named.execute("SELECT clean_room_name, notebook_name FROM task_runs")
            n = sum(1 for _ in named)
    check("server-side cursor, 10 rows a fetch", n == expected, f"({n} rows)")

    conn.execute("DROP MATERIALIZED VIEW IF EXISTS runs_mv")
    conn.execute("CREATE MATERIALIZED VIEW runs_mv AS SELECT row_number() OVER () AS n, clean_room_name, start_time FROM task_runs")
    conn.execute("CREATE UNIQUE INDEX ON runs_mv (n)")
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY runs_mv")
    n = conn.execute("SELECT count(*) FROM runs_mv").fetchone()[0]
    check("materialized view and REFRESH CONCURRENTLY", n == expected, f"({n} rows)")

failed = sum(1 for _, ok in checks if not ok)
print(f"psycopg: {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
