"""MkDocs hooks: the pages' Python snippets run while the site is built, as the tests run them.

Every plain ```` ```python ```` block of a page runs at build time through markdown-exec, the
blocks of a page in order in one namespace and in a fresh temporary folder of the page's own,
the way ``tests/test_docs.py`` runs them. The page then shows each block's source with what it
printed below it, so the printed output on the site is what the code prints today.

A figure is a PNG file that a snippet writes in its working folder. The page names it in an
HTML comment placed where the picture belongs::

    <!-- figure: loss.png Training and validation loss of the MLP. -->

GitHub shows nothing there; the built page shows the picture, embedded in the HTML, with the
caption under it. A figure the snippets did not draw is a build warning, which ``mkdocs build
--strict`` (``nox -s docs``) turns into an error.

Blocks that already carry options (```` ```python exec="on" html="1" ````) are left as written:
they are build-time helpers, such as the table of ``jaxdl``'s names in the reference.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import re
import shutil
import tempfile

FENCE = re.compile(r"^```python[ \t]*$", re.MULTILINE)
FIGURE = re.compile(r"<!--\s*figure:\s*(\S+\.png)\s*(.*?)\s*-->", re.DOTALL)

log = logging.getLogger("mkdocs.hooks.jaxdl_docs")
_workdirs: dict[str, str] = {}


def session_name(src_uri: str) -> str:
    """The markdown-exec session of a page: one namespace per page, never shared."""
    return "page_" + re.sub(r"\W", "_", src_uri)


def on_config(config):
    # Snippets that use pyplot must not look for a display on a build machine.
    os.environ.setdefault("MPLBACKEND", "Agg")
    return config


def on_page_markdown(markdown, page, config, files):
    if not FENCE.search(markdown):
        return markdown
    workdir = tempfile.mkdtemp(prefix="jaxdl-docs-")
    _workdirs[page.file.src_uri] = workdir
    options = (
        f'exec="on" session="{session_name(page.file.src_uri)}" workdir="{workdir}" '
        'source="above" result="text"'
    )
    return FENCE.sub(lambda _: f"```python {options}", markdown)


def on_page_content(content, page, config, files):
    workdir = _workdirs.pop(page.file.src_uri, None)

    def embed(match):
        name, caption = match.group(1), " ".join(match.group(2).split())
        path = os.path.join(workdir, name) if workdir else None
        if path is None or not os.path.isfile(path):
            log.warning(
                f"{page.file.src_uri}: figure {name!r} was not drawn by the page's snippets"
            )
            return ""
        with open(path, "rb") as file:
            data = base64.b64encode(file.read()).decode("ascii")
        text = html.escape(caption)
        return (
            f'<figure class="jaxdl-figure"><img src="data:image/png;base64,{data}" alt="{text}">'
            f"<figcaption>{text}</figcaption></figure>"
        )

    content = FIGURE.sub(embed, content)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return content
