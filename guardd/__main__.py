"""`python -m guardd` runs the command line."""

from guardd.cli import main

raise SystemExit(main())
