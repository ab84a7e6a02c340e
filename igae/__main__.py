"""``python -m igae`` runs the CLI."""

import sys

from igae.cli import main

sys.exit(main())
