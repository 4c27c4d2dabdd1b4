package state

import "path/filepath"

// Layout names the files and directories under the agent's root.
type Layout struct {
	Root string
}

// StateFile is state.json: managed services, releases, last applied specs.
func (l Layout) StateFile() string { return filepath.Join(l.Root, "state.json") }

// LockFile names the current holder of the host while one is applying.
func (l Layout) LockFile() string { return filepath.Join(l.Root, "lock.json") }

// JournalFile exists only while a journaled apply is unfinished.
func (l Layout) JournalFile() string { return filepath.Join(l.Root, "journal.json") }

// BinDir is where gsd's bootstrap puts agent binaries: bin/<sha256>/.
func (l Layout) BinDir() string { return filepath.Join(l.Root, "bin") }

// ArtifactDir is the content-addressed store: artifacts/<sha256>/<name>.
func (l Layout) ArtifactDir() string { return filepath.Join(l.Root, "artifacts") }

// ReleaseDir holds the immutable releases: releases/<id>/.
func (l Layout) ReleaseDir() string { return filepath.Join(l.Root, "releases") }

// ReleaseKey is the host's own key that mixes secrets into release ids.
func (l Layout) ReleaseKey() string { return filepath.Join(l.Root, "release.key") }

// ServiceDir holds a service's managed files, wrapper config and logs.
func (l Layout) ServiceDir(service string) string {
	return filepath.Join(l.Root, "services", service)
}

// FilesDir is the directory managed files' relative names resolve against.
func (l Layout) FilesDir(service string) string {
	return filepath.Join(l.ServiceDir(service), "files")
}

// WrapperConfig is the service host's wrapper.json for a wrapped service.
func (l Layout) WrapperConfig(service string) string {
	return filepath.Join(l.ServiceDir(service), "wrapper.json")
}

// WrapperStatus is where the service host records starts and exit codes:
// in the log directory, the one place the service's account may write.
func (l Layout) WrapperStatus(service string) string {
	return filepath.Join(l.LogDir(service), "wrapper-status.json")
}

// WorkDir is a wrapped program's working directory, unless the service
// names another; the service's account may modify it.
func (l Layout) WorkDir(service string) string {
	return filepath.Join(l.ServiceDir(service), "work")
}

// LogDir holds the wrapped program's rotated stdout/stderr logs, unless
// the service's log block names another folder.
func (l Layout) LogDir(service string) string {
	return filepath.Join(l.ServiceDir(service), "logs")
}
