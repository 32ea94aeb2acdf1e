"""Every Python snippet of the guide in docs/ runs, its assertions hold and it draws the
figures its page shows.

The plain ```python blocks of a page run in order, in one namespace, in a temporary folder
(snippets that write pictures write there), so the guide can never go stale. The site build
(``nox -s docs``, docs/hooks.py) runs the same blocks the same way and puts what they print
and the figures they draw into the pages; here each ``<!-- figure: NAME.png ... -->`` a
page names must be a file its blocks wrote. The tutorial trains six networks in a row, so
its test is marked slow; the docs session builds it every time.
"""

import importlib.util
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("**/*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
FIGURE = re.compile(r"<!--\s*figure:\s*(\S+\.png)\s*(.*?)\s*-->", re.DOTALL)
SLOW = {"tutorial"}  # page stems whose snippets take minutes


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_has_its_pages():
    names = {page.stem for page in PAGES}
    assert len([n for n in names if n[:2].isdigit()]) >= 21
    index = (DOCS / "index.md").read_text()
    for page in PAGES:
        if page.name != "index.md":
            assert page.relative_to(DOCS).as_posix() in index, f"{page.name} not in docs/index.md"


def test_the_build_runs_the_blocks_the_tests_run():
    """The site's hook executes exactly the blocks this file runs, and reads the figure
    markers the same way."""
    hooks = _hooks()
    assert hooks.FIGURE.pattern == FIGURE.pattern
    for page in PAGES:
        text = page.read_text()
        assert len(hooks.FENCE.findall(text)) == len(BLOCK.findall(text)), page.name


def _page_params():
    for page in PAGES:
        text = page.read_text()
        if BLOCK.search(text):
            marks = [pytest.mark.slow] if page.stem in SLOW else []
            yield pytest.param(page, marks=marks, id=page.stem)


@pytest.mark.parametrize("page", list(_page_params()))
def test_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    text = page.read_text()
    for i, code in enumerate(BLOCK.findall(text)):
        exec(compile(code, f"{page.name} block {i + 1}", "exec"), namespace)
    missing = [name for name, _ in FIGURE.findall(text) if not (tmp_path / name).is_file()]
    assert not missing, f"{page.name} shows figures its snippets did not draw: {missing}"
