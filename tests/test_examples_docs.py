"""Every example says what its full run is, and what a quick run is not.

The convention (DESIGN.md: each example states its command, hardware, time and result): an
example's module docstring ends with three lines,

    Full run: python examples/NAME.py [arguments]
    Time: about N s on 2 CPU cores            (or "N min")
    Reaches: what the full run prints, e.g. test accuracy 0.967

and ``--quick`` prints, before anything else, that its numbers are a smoke test. An
example whose quick run is its full run says so in its docstring (``--quick`` is the same
run) instead. Only the sources are read; no example runs here (``nox -s examples`` runs
them with ``--quick``).
"""

import ast
import pathlib
import re

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.py"))
FULL_RUN = re.compile(r"^Full run: python examples/(?P<name>\w+)\.py(?P<args>(?: \S+)*)$")
TIME = re.compile(r"^Time: about (?P<amount>\d+(?:\.\d+)?) (?P<unit>s|min) on 2 CPU cores$")
REACHES = re.compile(r"^Reaches: (?P<what>\S.*)$")
QUICK_NOTE = "--quick: a smoke test"
SAME_RUN = "``--quick`` is the same run"


def run_block(docstring: str) -> dict:
    """The Full run / Time / Reaches block of an example's docstring: three consecutive
    lines, in that order, as the last paragraph."""
    lines = docstring.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Full run:")]
    assert len(starts) == 1, "expected one 'Full run:' line"
    i = starts[0]
    assert i + 3 == len(lines), "the block is the docstring's last three lines"
    found = {}
    for pattern, line in zip((FULL_RUN, TIME, REACHES), lines[i : i + 3]):
        match = pattern.match(line)
        assert match, f"{line!r} does not match {pattern.pattern}"
        found.update(match.groupdict())
    return found


def prints_quick_note(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            for arg in node.args:
                text = "".join(
                    part.value
                    for part in ast.walk(arg)
                    if isinstance(part, ast.Constant) and isinstance(part.value, str)
                )
                if text.startswith(QUICK_NOTE):
                    return True
    return False


def test_the_examples_are_there():
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_docstring_states_the_full_run(path):
    tree = ast.parse(path.read_text())
    docstring = ast.get_docstring(tree)
    assert docstring, f"{path.name} has no docstring"
    block = run_block(docstring)
    assert block["name"] == path.stem, f"'Full run:' names {block['name']}.py, not {path.name}"
    assert float(block["amount"]) > 0
    assert len(block["what"]) >= 8, "say what the full run reaches"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_quick_says_it_is_a_smoke_test(path):
    source = path.read_text()
    tree = ast.parse(source)
    assert "--quick" in source, f"{path.name} takes no --quick"
    if SAME_RUN in (ast.get_docstring(tree) or ""):
        return
    assert prints_quick_note(tree), f"{path.name}: --quick prints no line starting {QUICK_NOTE!r}"


def test_the_parser_reads_the_format():
    """The checks above reject what they should (a hand-made docstring each way)."""
    good = "Title.\n\nFull run: python examples/x.py --model cnn\nTime: about 9 s on 2 CPU cores\n"
    good += "Reaches: test accuracy 0.992"
    assert run_block(good) == {
        "name": "x",
        "args": " --model cnn",
        "amount": "9",
        "unit": "s",
        "what": "test accuracy 0.992",
    }
    for bad in (
        good.replace("about 9 s", "9 seconds"),
        good.replace("Reaches: test accuracy 0.992", "Reaches:"),
        good + "\nMore text after the block.",
        "Title without a block.",
    ):
        with pytest.raises(AssertionError):
            run_block(bad)
    assert prints_quick_note(ast.parse('print("--quick: a smoke test " "of seconds")'))
    assert not prints_quick_note(ast.parse('print("quick run")'))
