"""A Flask app using Backburner as the README shows: the extension (app factory), views
enqueueing with the sync API, the job router at /bb and the dashboard at /dashboard behind
the Flask session's login. Served by gunicorn, with its worker from `flask backburner worker`,
in tests/frameworks/test_flask.py (BB_TEST_URL names the store); importable from this
directory (gunicorn --chdir, PYTHONPATH for the flask command)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask, Response, abort, current_app, jsonify, request, session

from backburner import Backburner
from backburner import flask as bb

# The worker's "stopped after N job(s)" line is what the test reads to know it stopped.
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
logging.getLogger("backburner").addHandler(_handler)
logging.getLogger("backburner").setLevel(logging.INFO)

URL = os.environ["BB_TEST_URL"]
jobs = Backburner(URL)
backburner = bb.BackburnerFlask(jobs)

USERS: dict[str, bb.Role] = {"admin": "admin", "viewer": "read"}


@jobs.task(name="greet")
def greet(name: str) -> str:
    """A sync task: it runs on a thread of the worker, in an app context of its own."""
    return f"{current_app.name} greets {name}"


@jobs.task
async def shout(name: str) -> dict[str, Any]:
    return {"text": f"{current_app.config['GREETING']} {name.upper()}", "pid": os.getpid()}


def role_of() -> bb.Role | None:
    return USERS.get(session.get("user", ""))


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test-only", GREETING="HELLO")
    backburner.init_app(app)
    app.register_blueprint(bb.jobs_blueprint(jobs, role=role_of, expose=[greet]),
                           url_prefix="/bb")
    app.register_blueprint(bb.dashboard_blueprint(jobs, role=role_of), url_prefix="/dashboard")

    @app.post("/login")
    def login() -> Response:
        session["user"] = request.form["user"]
        return jsonify(user=session["user"])

    @app.post("/greet")
    def enqueue_greeting() -> Response:
        return bb.accepted(greet.enqueue_sync(request.args["name"]))

    @app.get("/shout")
    def shout_and_wait() -> Response:
        job = shout.enqueue_sync(request.args["name"])
        return jsonify(id=job.id, result=job.result_sync(timeout=10), served_by=os.getpid())

    @app.get("/result/<job_id>")
    def result(job_id: str) -> Response:
        return jsonify(result=jobs.job(job_id).result_sync(timeout=10))

    if URL.startswith("postgresql"):
        _orders(app)
    return app


# -- PostgreSQL: a row and a job in one transaction --------------------------------------------
def _schema() -> str:
    return parse_qs(urlsplit(URL).query)["schema"][0]


def _sqlalchemy_url() -> str:
    return urlsplit(URL)._replace(scheme="postgresql+psycopg", query="").geturl()


def _orders(app: Flask) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    # Made here, connected on first use: after gunicorn forked, in each worker process.
    engine = create_engine(_sqlalchemy_url())
    table = f"{_schema()}.orders"

    @app.post("/orders")
    def place_order() -> Response:
        item = request.args["item"]
        with Session(engine) as db, db.begin():
            db.execute(text(f"INSERT INTO {table} (item) VALUES (:item)"), {"item": item})
            job = greet.options(connection=db).enqueue_sync(item)
            if request.args.get("fail"):
                # Raised inside `db.begin()`: the row and the job roll back together.
                abort(Response(f'{{"id": "{job.id}"}}', 409, mimetype="application/json"))
        return jsonify(id=job.id)


def _prepare() -> None:
    """Used before gunicorn forks (`--preload` imports this module in the parent): open the
    store through the sync API, so its children inherit a parent that used it."""
    jobs.get_job_sync("warm-up")
    if URL.startswith("postgresql"):
        import psycopg

        # The store made its schema just now; the orders table goes with it at the end.
        # The gunicorn parent and the worker process import this module at once: CREATE
        # TABLE IF NOT EXISTS is no guard against a concurrent one (both may pass the check
        # and one fails on pg_type's unique index), so they take turns on a lock.
        with psycopg.connect(urlsplit(URL)._replace(query="").geturl()) as c, c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_schema()])
            c.execute(f"CREATE TABLE IF NOT EXISTS {_schema()}.orders (item text NOT NULL)")


_prepare()
app = create_app()
