"""The SDK contender: what a user's script on the official Databricks Python SDK does.

    sdk_contender.py list HOST TOKEN ROOM            list every run, materialised in Python
    sdk_contender.py copy HOST TOKEN ROOM PGPORT     the same, then loaded into Postgres with COPY

Prints the number of runs.
"""
import csv
import io
import json
import subprocess
import sys

from databricks.sdk import WorkspaceClient

COLUMNS = [
    "notebook_name", "notebook_etag", "notebook_updated_at", "notebook_job_run_state", "output_schema_name",
    "output_schema_expiration_time", "shared_output_schema_name", "shared_output_schema_expiration_time",
    "run_duration", "start_time", "collaborator_job_run_info",
]


def main():
    mode, host, token, room = sys.argv[1:5]
    w = WorkspaceClient(host=host, token=token)
    runs = list(w.clean_room_task_runs.list(clean_room_name=room, page_size=100))
    if mode == "copy":
        pg_port = sys.argv[5]
        buf = io.StringIO()
        out = csv.writer(buf)
        for run in runs:
            d = run.as_dict()
            row = [room]
            for c in COLUMNS:
                v = d.get(c)
                row.append(json.dumps(v) if isinstance(v, (dict, list)) else v)
            out.writerow(row)
        psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", pg_port, "-U", "postgres", "-d", "bench", "-v", "ON_ERROR_STOP=1",
                "-c", "TRUNCATE sdk_runs", "-c", "COPY sdk_runs FROM STDIN WITH (FORMAT csv)"]
        subprocess.run(psql, input=buf.getvalue().encode(), check=True)
    print(len(runs))


if __name__ == "__main__":
    main()
