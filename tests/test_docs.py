"""Every Python snippet of the guide in docs/ runs and its assertions hold.

The blocks of a page run in order, in one namespace, in a temporary folder (snippets that
write pictures write there), so the guide can never go stale.
"""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("**/*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_the_guide_has_its_pages():
    names = {page.stem for page in PAGES}
    assert len([n for n in names if n[:2].isdigit()]) >= 21
    index = (DOCS / "index.md").read_text()
    for page in PAGES:
        if page.name != "index.md":
            assert page.relative_to(DOCS).as_posix() in index, f"{page.name} not in docs/index.md"


@pytest.mark.parametrize(
    "page", [p for p in PAGES if BLOCK.search(p.read_text())], ids=lambda p: p.stem
)
def test_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        exec(compile(code, f"{page.name} block {i + 1}", "exec"), namespace)
