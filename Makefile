# Tincture: the two commands a newcomer needs.
#   make run    installs what is missing, builds and starts the GUI   (make run FILE=reel.mkv)
#   make test   installs what is missing, builds and runs every test
#   make model  retrains the built-in colorizer and re-evaluates it (needs the training photos)
# Both are idempotent: scripts/setup.sh checks before it installs.

CARGO ?= cargo
FILE ?=

.PHONY: run test setup bench model

setup:
	@scripts/setup.sh --gui

run: setup
	@echo "[make] building and starting tincture"
	$(CARGO) run -p tincture-app --bin tincture -- $(FILE)

test: setup
	@echo "[make] building every target (the end-to-end tests run the tincture-cli binary), then running the tests"
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace --all-targets

bench: setup
	$(CARGO) bench -p tincture-engine --bench render_vs_ffmpeg
	$(CARGO) bench -p tincture-infer --bench inference
	$(CARGO) bench -p tincture-engine --bench metrics
	@scripts/setup.sh --bench
	$(CARGO) bench -p tincture-engine --bench flow

model: setup
	scripts/train-model.sh
