"""Run every benchmark scenario in bench/ and write bench/RESULTS.md.

A scenario is a script ``bench/<name>.py`` (not starting with ``_``, not ``run.py``) whose
docstring says what it measures and on what data, and which prints one JSON object as its
last line of output. Each runs in its own process: scenarios configure their own database
and broker before Django starts. Results are measured on the machine that runs them; the
file says which.
"""

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run.py", "__init__.py"}


def scenarios() -> list[Path]:
    return [
        path
        for path in sorted(HERE.glob("*.py"))
        if path.name not in SKIP
        and not path.name.startswith("_")
        and 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    ]


def docstring(path: Path) -> str:
    import ast

    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def main() -> None:
    found = scenarios()
    if not found:
        print("No benchmark scenarios yet.")
        return
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}); "
        "written by `make bench` (bench/run.py).",
        "",
    ]
    for path in found:
        print(f"running {path.stem} …", flush=True)
        out = subprocess.run(
            [sys.executable, str(path)], cwd=HERE.parent, capture_output=True, text=True
        )
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{path.name} failed")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        lines += [f"## {path.stem}", "", docstring(path), "", "```json"]
        lines += [json.dumps(result, indent=2), "```", ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")
    print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
