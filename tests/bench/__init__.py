"""Router-core benchmark: `make bench` or `python -m tests.bench.run` (not part of pytest)."""
