"""`python -m benchmark` runs the benchmark (see benchmark/bench.py, which runs the measurements of cpu.py, processes.py and detection.py and reports them with report.py)."""

from benchmark.bench import main

raise SystemExit(main())
