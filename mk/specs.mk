# The HCL languages (package specs): fuzz the spec parser, validate the examples.
TEST_EXTRA += specs-fuzz specs-examples

.PHONY: specs-fuzz specs-examples specs-golden

# -fuzzminimizetime keeps minimisation of a new input from eating the budget
# (its default, 60s, stalls a 15 s run on a 2-core machine).
specs-fuzz: ## fuzz the spec parser for 15 s (FuzzParseSpec)
	$(GO) test -run='^$$' -fuzz=FuzzParseSpec -fuzztime=15s -fuzzminimizetime=1s ./specs

specs-examples: ## validate examples/farm.hcl, examples/specs/*.hcl and examples/health/*.hcl with the built command
	$(GO) run ./cmd/hilfarm validate --farm examples/farm.hcl examples/farm.hcl examples/specs/*.hcl examples/health/*.hcl
	$(GO) run ./cmd/hilfarm fmt -check examples/farm.hcl examples/specs examples/health

specs-golden: ## rewrite the golden files of package specs (review the diff!)
	$(GO) test ./specs -update

BENCH_EXTRA += specs-bench
.PHONY: specs-bench
specs-bench: ## time parsing and validating a spec and the farm
	$(GO) test -run='^$$' -bench=. -benchtime=2s ./specs
