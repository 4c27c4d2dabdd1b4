// Package testfs gives tests a temporary directory that can also be
// cleaned up under Wine, where the testing package's own t.TempDir cleanup
// fails (os.RemoveAll returns "Invalid function" there).
package testfs
