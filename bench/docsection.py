"""Writing a generated section into docs/benchmarks.md, shared by the benchmarks."""

from __future__ import annotations

import os
import re


def replace_section(path: str, marker: str, section: str) -> None:
    """Replaces the section whose heading starts with `marker` (up to the next `## ` heading) with
    `section`, or appends `section` when there is none."""
    text = open(path).read() if os.path.exists(path) else "# StratosDB benchmarks\n"
    pattern = re.compile(re.escape(marker) + r".*?(?=\n## |\Z)", re.S)
    text = pattern.sub(lambda _: section.rstrip() + "\n", text) if marker in text else text.rstrip() + "\n\n" + section
    open(path, "w").write(text)
