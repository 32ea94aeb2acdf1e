"""``python -m jaxdl.cli`` runs the ``jaxdl`` command (``jaxdl.cli.main``)."""

import sys

from jaxdl.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
