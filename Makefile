# Tincture: the two commands a newcomer needs.
#   make run    installs what is missing, builds and starts the GUI   (make run FILE=reel.mkv)
#   make test   installs what is missing, builds and runs every test
#   make model  retrains the built-in colorizer and re-evaluates it (needs the training photos)
#   make install  installs tincture, tincture-cli, ONNX Runtime, the built-in model and a desktop
#               entry under PREFIX (default ~/.local), so `tincture` runs from any folder
# Both are idempotent: scripts/setup.sh checks before it installs.

CARGO ?= cargo
FILE ?=
PREFIX ?= $(HOME)/.local
# Where cargo builds: the same place for `make run`, `make test` and `make install`.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: run test setup bench model install

setup:
	@scripts/setup.sh --gui

# The same build command as `make test`, so the two share one build (a
# `cargo run -p tincture-app` resolves features differently and rebuilt for minutes).
run: setup
	@echo "[make] building and starting tincture"
	$(CARGO) build --workspace --all-targets
	$(TARGET_DIR)/debug/tincture $(FILE)

test: setup
	@echo "[make] building every target (the end-to-end tests run the tincture-cli binary), then running the tests"
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace --all-targets

bench: setup
	$(CARGO) bench -p tincture-engine --bench render_vs_ffmpeg
	$(CARGO) bench -p tincture-infer --bench inference
	$(CARGO) bench -p tincture-engine --bench metrics
	$(CARGO) bench -p tincture-engine --bench long_shot
	$(CARGO) bench -p tincture-engine --bench farm
	@scripts/setup.sh --bench
	$(CARGO) bench -p tincture-engine --bench flow

model: setup
	scripts/train-model.sh

install: setup
	@echo "[make] building release binaries and installing into $(PREFIX)"
	$(CARGO) build --release -p tincture-app -p tincture-cli
	install -Dm755 $(TARGET_DIR)/release/tincture $(PREFIX)/bin/tincture
	install -Dm755 $(TARGET_DIR)/release/tincture-cli $(PREFIX)/bin/tincture-cli
	install -d $(PREFIX)/lib/tincture
	install -m644 third_party/onnxruntime/libonnxruntime.so* $(PREFIX)/lib/tincture/
	install -Dm644 models/tincture-colorizer-v1.json $(PREFIX)/share/tincture/models/tincture-colorizer-v1.json
	install -Dm644 models/tincture-colorizer-v1.onnx $(PREFIX)/share/tincture/models/tincture-colorizer-v1.onnx
	install -Dm644 assets/tincture.png $(PREFIX)/share/icons/hicolor/256x256/apps/tincture.png
	install -d $(PREFIX)/share/applications
	printf '%s\n' '[Desktop Entry]' 'Type=Application' 'Name=Tincture' \
	  'Comment=Colorize black-and-white film, keeping its luma' \
	  'Exec=$(PREFIX)/bin/tincture %f' 'Icon=tincture' 'Terminal=false' \
	  'Categories=AudioVideo;Video;' 'MimeType=video/x-matroska;video/mp4;video/quicktime;application/json;' \
	  'StartupWMClass=tincture' > $(PREFIX)/share/applications/tincture.desktop
	@echo "[make] installed: $(PREFIX)/bin/tincture and $(PREFIX)/bin/tincture-cli (put $(PREFIX)/bin on PATH)"
