# Shortcuts for ./dev, which sets everything up itself.
.PHONY: serve test lint fmt bench
serve:
	./dev serve
test:
	./dev test
lint:
	./dev setup && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
fmt:
	./dev setup && .venv/bin/ruff format . && .venv/bin/ruff check --fix .
bench:
	./dev bench
