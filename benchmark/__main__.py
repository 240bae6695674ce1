"""`python -m benchmark` runs the benchmark (see benchmark/bench.py)."""

from benchmark.bench import main

raise SystemExit(main())
