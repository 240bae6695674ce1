"""`python -m guardd` runs the command line."""

from guardd.cli.main import main

raise SystemExit(main())
