"""Never imported by Backburner: R20 stores jobs whose task name points here. Importing this
module (as a worker resolving task names by import would) leaves a marker directory."""

import os

os.mkdir(os.environ["RELIABILITY_MARKER"])


def run() -> None:
    os.mkdir(os.environ["RELIABILITY_MARKER"] + "-ran")
