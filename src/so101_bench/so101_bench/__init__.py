"""The benchmarks behind `make bench-*`; each module runs as ``python -m so101_bench.<name>``."""
