package filter_test

import (
	"fmt"
	"log"

	"github.com/xdpkit/xdpkit/filter"
)

// Compile a filter that sends DNS to the AF_XDP socket and everything else
// to the kernel, and see how it was understood.
func ExampleCompile() {
	f, err := filter.Compile("udp port 53 or 5353 and not vlan", filter.Redirect, filter.Pass)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f)
	fmt.Println(f.Match(), f.NoMatch())

	_, err = filter.Compile("udp prt 53", filter.Redirect, filter.Pass)
	fmt.Println(err)
	// Output:
	// (udp port 53 or udp port 5353) and not vlan
	// redirect pass
	// filter: "udp prt 53": unexpected "prt" at offset 4
}

// Drop everything but SSH, DNS, ARP and neighbour discovery in the kernel.
func ExampleCompileWithOptions() {
	f, err := filter.CompileWithOptions("", filter.Drop, filter.Drop, &filter.CompileOptions{KeepManagement: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q keeps management traffic: %v\n", f, f.KeepManagement())
	// Output:
	// "" keeps management traffic: true
}
