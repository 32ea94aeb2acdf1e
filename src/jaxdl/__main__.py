"""``python -m jaxdl`` runs the ``jaxdl`` command (``jaxdl.cli.main``)."""

import sys

from jaxdl.cli import main

if __name__ == "__main__":
    sys.exit(main())
