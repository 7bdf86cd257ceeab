"""Writes the README's list of supported op types from the kernel registry.

    python scripts/gen_op_list.py          # rewrite the section between the markers
    python scripts/gen_op_list.py --check  # exit 1 if the README is out of date (a test runs it)
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- ops:begin (scripts/gen_op_list.py) -->", "<!-- ops:end -->"


def section() -> str:
    sys.path.insert(0, str(ROOT))
    import gpugraph.ops  # noqa: F401  (registers the kernels)
    from gpugraph.ops import registry

    names = registry.registered_op_types()
    return f"{BEGIN}\n{len(names)} op types: " + ", ".join(f"`{n}`" for n in names) + f".\n{END}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = README.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    updated = text[:start] + section() + text[stop:]
    if args.check:
        return 0 if updated == text else 1
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
