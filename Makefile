# souk, for those who have make: each target runs ./souk.sh, which is what
# the README's commands use on machines without make.
#   make run    install what is missing, build, start `souk console`
#   make test   install what is missing, run every test (unit, integration,
#               fakes, browser, then again under ASan+UBSan, plus a valgrind
#               leak run)
# Other targets: build, bench, fuzz, clean.

ARGS ?=

.PHONY: all build run test bench fuzz clean deps-build deps-test

all: build

deps-build:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

build:
	@./souk.sh build

run:
	@./souk.sh run $(ARGS)

test:
	@./souk.sh test

bench:
	@./souk.sh bench

fuzz:
	@./souk.sh fuzz

clean:
	rm -rf build
