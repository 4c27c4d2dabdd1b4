// Package artifacts is the agent's content-addressed store of staged
// binaries: <root>/artifacts/<sha256>/<name>. An upload streams into a temp
// file while being hashed, and only a complete stream whose size and SHA-256
// match is synced and renamed into place, so a broken or hostile upload can
// never replace what a service runs. Lookups verify the file's SHA-256
// again (cached by path, size and time), so a file placed in the store by
// other means is never taken for an artifact.
package artifacts
