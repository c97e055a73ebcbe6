"""``python -m resolver`` runs the same command line as ``rootwalk``."""

from resolver.cli import main

raise SystemExit(main())
