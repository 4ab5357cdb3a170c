"""Print the shell commands of the README's first ``sh`` block under a ``## SECTION`` heading.

CI runs exactly what a newcomer copies from the README: `.ci/run` takes its install, run and
test commands from here instead of keeping copies that could drift. Comments after ``#`` are
dropped; each command is printed on a line of its own.

    python3 .ci/readme_commands.py Install
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def commands(section: str, text: str) -> list[str]:
    heading = re.search(rf"^## {re.escape(section)}\s*$", text, re.MULTILINE)
    if heading is None:
        raise SystemExit(f"README.md has no '## {section}' section")
    block = re.search(r"^```sh\n(.*?)^```", text[heading.end() :], re.MULTILINE | re.DOTALL)
    if block is None:
        raise SystemExit(f"README.md's '## {section}' section has no ```sh block")
    lines = []
    for line in block.group(1).splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            lines.append(command)
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: readme_commands.py SECTION")
    print("\n".join(commands(sys.argv[1], README.read_text(encoding="utf-8"))))
