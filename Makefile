.PHONY: help serve test lint types bench fuzz soak fmt clients-frameworks
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
fuzz:            ## long property-based run from OpenAI's spec, SQLite and PostgreSQL (docs/architecture.md#fuzzing)
	scripts/bootstrap dev && for db in sqlite postgres; do ASSISTANTD_FUZZ_EXAMPLES=$${ASSISTANTD_FUZZ_EXAMPLES:-200} ASSISTANTD_FUZZ_PHASES=examples,coverage,fuzzing ASSISTANTD_FUZZ_RANDOM=1 ASSISTANTD_FUZZ_BACKENDS=$$db .venv/bin/python -m pytest -q -p no:cacheprovider tests/fuzz || exit 1; done
soak:            ## ten minutes of mixed load on one process: errors, RSS plot, runs left (docs/benchmarks.md#soak)
	scripts/bootstrap dev && .venv/bin/python -m bench.soak --minutes $${SOAK_MINUTES:-10} --users $${SOAK_USERS:-16}
clients-frameworks: ## every framework of the clients matrix, Semantic Kernel included
	scripts/bootstrap dev && scripts/clients-env all && ASSISTANTD_TEST_FRAMEWORKS=required .venv/bin/python -m pytest -q tests/clients/test_frameworks.py
