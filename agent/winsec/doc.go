// Package winsec is the part of Windows security the agent manages: the
// rights accounts hold in the local security policy ("Log on as a
// service"), the privileges of the agent's own token, the owner and access
// list of its folders, and whether the host can use a group managed
// service account. Host is the small set of Windows calls this needs;
// SecureRoot, Grant and EnsureRight are the rules built on them, shared by
// the real host (Local) and the fake in winsectest, which enforces what
// Windows enforces where Wine only has stubs.
package winsec
