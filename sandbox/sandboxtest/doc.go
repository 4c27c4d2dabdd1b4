// Package sandboxtest holds what the sandbox's tests share: prerequisite
// checks that skip locally but fail when GSD_REQUIRE_SANDBOX=1 (so CI never
// passes by skipping), and throwaway Wine hosts cloned from the template.
package sandboxtest
