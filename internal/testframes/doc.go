// Package testframes holds test fixtures shared by xdpkit's tests: a hex
// dump decoder, Ethernet frames that the tests of more than one package
// read, a gopacket frame builder and a check of fuzz seed corpora.
//
// It is for _test.go files only: no non-test code may import it (its own
// tests check that), so it never ends up in a program built with xdpkit.
package testframes
