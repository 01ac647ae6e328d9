package testenv

import (
	"os"
	"strconv"
)

// BenchTokens is the size of the large stores benchmarks build: RILL_BENCH_TOKENS, default
// 1,000,000.
func BenchTokens() int {
	if n, err := strconv.Atoi(os.Getenv("RILL_BENCH_TOKENS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}
