// Package testframes holds test fixtures shared by xdpkit's tests: a hex
// dump decoder, Ethernet frames that the tests of more than one package
// read, and a gopacket frame builder.
//
// It is for _test.go files only: no non-test code may import it (its own
// tests check that), so it never ends up in a program built with xdpkit.
package testframes
