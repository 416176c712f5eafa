"""``python -m cxlab``: the command line."""

from cxlab.cli import main

raise SystemExit(main())
