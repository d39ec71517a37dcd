# refersplat_ros: every command sets up whatever is missing first (scripts/setup.sh, idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTEST_ARGS ?=

.PHONY: help setup test lint demo demo-live bench bench-language ablation clean

help:
	@echo 'make demo    setup + default scene + trained field (cached) + node + queries -> demo_out/'
	@echo 'make demo-live  the demo, then keep the node and the Foxglove viewer (ws://localhost:8765)'
	@echo 'make setup   install Debian/Python dependencies and build the interfaces into .venv'
	@echo 'make test    setup + the whole test suite (lint included); what CI runs'
	@echo 'make lint    flake8 / pep257 only'
	@echo 'make bench   rasterizer + query-latency benchmarks -> docs/BENCHMARKS.md'
	@echo 'make bench-language  language benchmark (field vs object graph) -> docs/RESULTS.md'
	@echo 'make ablation  train/evaluate the ablations on the default scene -> docs/RESULTS.md'
	@echo 'make clean   remove build outputs (keeps .venv)'

setup:
	@bash scripts/setup.sh

# REFERSPLAT_REQUIRE_ROS=1: a missing rclpy or interface build fails the ROS tests, never skips.
test: setup
	@. ./env.sh && REFERSPLAT_REQUIRE_ROS=1 python -m pytest -ra --durations=10 $(PYTEST_ARGS)

demo: setup
	@. ./env.sh && python scripts/demo.py

demo-live: setup
	@. ./env.sh && python scripts/demo.py --viewer --keep-running

bench: setup
	@. ./env.sh && python bench/rasterize.py && python bench/query_latency.py

ablation: setup
	@. ./env.sh && python bench/ablation.py

bench-language: setup
	@. ./env.sh && python bench/language.py

lint: setup
	@. ./env.sh && python -m pytest test/test_lint.py -q

clean:
	rm -rf build install log env.sh
