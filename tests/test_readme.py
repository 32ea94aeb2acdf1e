"""Every Python snippet of README.md runs, each on its own.

Each ```python block runs in a fresh namespace, in a temporary folder (snippets that write
checkpoints, exports, CSV files or pictures write there), so no snippet leans on another and
the README can never go stale.
"""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
BLOCKS = BLOCK.findall(README.read_text())


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("number", range(1, len(BLOCKS) + 1), ids=lambda n: f"block{n}")
def test_snippet_runs(number, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"readme_block_{number}"}
    code = BLOCKS[number - 1]
    exec(compile(code, f"README.md block {number}", "exec"), namespace)
