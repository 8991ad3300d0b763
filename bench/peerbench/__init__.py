"""Backburner side by side with its peers (`python bench/run.py --peers`): each library in
its own virtualenv under bench/.venvs, the same Redis and PostgreSQL, the same job counts.

Layout: `adapter.py` is the one interface a library implements (how to install it, how to
start its workers, how it is configured); `adapters/` holds one module per library;
`stores.py` resets Redis/PostgreSQL/SQLite between scenarios; `venvs.py` builds the
virtualenvs; `procs.py` runs clients and worker processes under time limits and reads their
memory; `scenarios.py` is the measurement itself; `report.py` the tables and targets;
`cli.py` the command line. The code that runs inside each virtualenv lives in bench/peers/.
"""
