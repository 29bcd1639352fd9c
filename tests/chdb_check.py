"""Applies cowork-ingest's DDL to current ClickHouse (chdb, embedded), loads RowBinary rows,
and runs queries. Called by tests/engines.rs with one JSON argument file:

  {"database": ..., "ddl": "<migrate --print-sql>", "tables": [{"name", "columns", "path"}],
   "after_load": ["INSERT INTO <rollup> SELECT ...", ...], "queries": ["SELECT ...", ...]}

Prints {"version": ..., "results": [[[field, ...], ...], ...]} as JSON (TabSeparated fields).
"""
import json
import sys

from chdb import session

args = json.load(open(sys.argv[1]))
db = args["database"]
s = session.Session()


def run(sql, fmt="TabSeparated"):
    return str(s.query(sql, fmt))


for stmt in args["ddl"].split(";\n"):
    body = "\n".join(l for l in stmt.splitlines() if not l.strip().startswith("--")).strip()
    if body:
        run(body)

for t in args["tables"]:
    types = dict(
        line.split("\t", 1)
        for line in run(
            f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = '{t['name']}'"
        ).splitlines()
    )
    cols = [c.strip() for c in t["columns"].split(",")]
    structure = ", ".join(f"{c} {types[c]}" for c in cols)
    run(
        f"INSERT INTO {db}.{t['name']} ({', '.join(cols)}) "
        f"SELECT * FROM file('{t['path']}', 'RowBinary', '{structure}')"
    )

for stmt in args.get("after_load", []):
    run(stmt)

results = []
for q in args["queries"]:
    out = run(q)
    results.append([line.split("\t") for line in out.splitlines()])
print(json.dumps({"version": run("SELECT version()").strip(), "results": results}))
