package filter

// Internals for the black-box tests in package filter_test.

// CompileUnoptimized compiles like Compile but keeps the loads of address
// words a net's mask leaves out, as libpcap does without its optimizer:
// its frame-by-frame verdicts equal tcpdump -O's.
func CompileUnoptimized(expr string, match, nomatch Action) (*Program, error) {
	return compile(expr, match, nomatch, nil, lowering{maskedLoads: true})
}
