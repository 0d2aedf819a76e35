.PHONY: help serve test lint types bench fmt clients-frameworks
help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
serve:           ## install and serve the API on the embedded defaults
	scripts/serve
test:            ## install and run lint, types and the whole test suite (what CI runs)
	scripts/test
lint:            ## ruff
	scripts/bootstrap dev && .venv/bin/ruff check src tests bench && .venv/bin/ruff format --check src tests bench
fmt:             ## format the code
	scripts/bootstrap dev && .venv/bin/ruff format src tests bench && .venv/bin/ruff check --fix src tests bench
types:           ## mypy --strict on src/
	scripts/bootstrap dev && .venv/bin/mypy
bench:           ## run the benchmarks (see docs/benchmarks.md)
	scripts/bootstrap dev && .venv/bin/python -m bench.list_runs
clients-frameworks: ## every framework of the clients matrix, Semantic Kernel included
	scripts/bootstrap dev && scripts/clients-env all && ASSISTANTD_TEST_FRAMEWORKS=required .venv/bin/python -m pytest -q tests/clients/test_frameworks.py
