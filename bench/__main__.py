"""`python -m bench`: run every bench/bench_*.py in turn, each as if started with `python -m bench.<name>`."""
from __future__ import annotations

import pkgutil
import runpy
import sys
from pathlib import Path


def run() -> None:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    for name in names:
        print(f"== bench.{name}", flush=True)
        sys.argv = [f"bench.{name}"]
        runpy.run_module(f"bench.{name}", run_name="__main__", alter_sys=True)
        print(flush=True)


if __name__ == "__main__":
    run()
