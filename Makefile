# The two commands of the README:  make report  (main job)  and  make test  (the tests).
# Both start with `setup`, which installs what is missing and is cheap when nothing is.
VENV := .venv/bin
OUT ?= out
ENGINES ?= v86,qemu
KERNELS ?= tiny,debian

.PHONY: setup images report test lint
setup:
	bash scripts/setup.sh

images: setup
	$(VENV)/x86lab image build --kernel tiny
	$(VENV)/x86lab image build --kernel debian

report: images
	$(VENV)/x86lab report --engines $(ENGINES) --kernels $(KERNELS) \
	    --json $(OUT)/report.json --html $(OUT)/report.html

test: images
	$(VENV)/ruff check .
	$(VENV)/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/ruff check .
