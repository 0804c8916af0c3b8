"""`python -m cli ...`, as tests, `entrega dev` and the benchmarks start the processes."""

from cli import main

main()
