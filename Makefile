# Entry points: `make demo` (the tiny experiment end to end on CPU) and `make test`.
# Every target depends on `setup`, which installs deno (npm, pinned in package.json) and, when
# missing, clang + lld (apt). Nothing assumes a globally installed deno.

DENO := node_modules/.bin/deno
STAMP := node_modules/.setup-done

.PHONY: setup demo test bench ok fmt lint clean

setup: $(STAMP)

$(STAMP): package.json package-lock.json scripts/ensure-toolchain.sh
	npm ci --no-audit --no-fund --loglevel=error
	bash scripts/ensure-toolchain.sh
	@touch $@

demo: setup
	$(DENO) task pipeline tiny

test: setup
	$(DENO) task test

bench: setup
	$(DENO) task bench

ok: setup
	$(DENO) task ok

fmt: setup
	$(DENO) fmt

lint: setup
	$(DENO) lint

clean:
	rm -rf build .cache
