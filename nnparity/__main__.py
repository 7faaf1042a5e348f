"""``python -m nnparity``."""

from nnparity.cli import main

raise SystemExit(main())
