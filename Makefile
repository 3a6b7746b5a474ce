# Two commands do all set-up on a fresh machine (Python 3.11 + pip):
#   make run    runs the whole engine embedded (Temporal dev server, PostgreSQL, worker, API)
#   make test   runs the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# docker-compose only validates docker-compose.yml (tests/test_compose.py); best effort: as root, from Debian
	@command -v docker-compose >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		apt-get install -y -q docker-compose >/dev/null 2>&1 || echo "docker-compose not installed: the compose file is checked without it"
	@# the console's browser tests (tests/test_console.py) drive Debian's chromium; best effort: as root, from Debian
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1; } || \
		echo "chromium not installed: the console's browser tests will skip"
	@# promtool checks and unit-tests the alert rules (tests/test_monitoring.py); Debian ships it in `prometheus`
	@command -v promtool >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || echo "promtool not installed: the alert rules are parsed without it"
	@# the documents' Chinese fonts (WeasyPrint finds them through fontconfig) and pdftotext for their tests
	@fc-list 2>/dev/null | grep -q "Noto Serif CJK SC" && command -v pdftotext >/dev/null || [ "$$(id -u)" != 0 ] || \
		! command -v apt-get >/dev/null || apt-get install -y -q --no-install-recommends fonts-noto-cjk poppler-utils \
		>/dev/null 2>&1 || echo "fonts-noto-cjk or poppler-utils not installed: documents fall back to other fonts"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/approvals dev

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .approvals .pytest_cache
