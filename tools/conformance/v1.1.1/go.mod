// Pins the released OCI distribution-spec conformance suite v1.1.1
// (tag v1.1.1 = commit a139cc423184, a ginkgo test package compiled with
// `go test -c`). The suite's own deps are resolved by run.sh with -mod=mod.
module lading.local/tools/conformance/v1.1.1

go 1.24.0

require github.com/opencontainers/distribution-spec/conformance v0.0.0-20250123160558-a139cc423184
