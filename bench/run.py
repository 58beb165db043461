"""Run every benchmark scenario in bench/ and write bench/RESULTS.md.

A scenario is a module ``bench/<name>.py`` with ``run() -> dict[str, object]`` (what it
measured, e.g. ``{"events/s": 812.4, "p95 latency ms": 140}``) and a docstring saying what it
measures and on what data. Results are measured on the machine that runs them; the file says
which.
"""

import importlib.util
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def scenarios():
    for path in sorted(HERE.glob("*.py")):
        if path.name in {"run.py", "__init__.py"} or path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"bench.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield path.stem, module


def main() -> None:
    found = list(scenarios())
    if not found:
        print("No benchmark scenarios yet (bench/*.py with a run() function).")
        return
    import django

    django.setup()
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}).",
        "",
    ]
    for name, module in found:
        print(f"running {name} …")
        results = module.run()
        lines += [f"## {name}", "", (module.__doc__ or "").strip(), ""]
        lines += [f"- {key}: {value}" for key, value in results.items()]
        lines.append("")
    (HERE / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")
    print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
