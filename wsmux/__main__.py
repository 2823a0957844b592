"""``python -m wsmux`` runs the command line."""

from wsmux.cli import main

raise SystemExit(main())
