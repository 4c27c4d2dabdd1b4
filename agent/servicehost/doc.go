// Package servicehost is the wrapper that lets any console program run as a
// Windows service, as NSSM and WinSW do (mode = "wrapped"). The agent binary
// is registered as the service; this package then runs the program as a
// child with its output in size-rotated log files, restarts it with bounded
// exponential backoff when it exits, injects its environment, records exit
// codes in a status file, and on stop asks it to quit (Ctrl-Break) before
// killing it, and every process it started (a job object on Windows, the
// process group on POSIX), after the stop timeout. The supervision logic is
// platform-neutral and tested on Linux; the SCM glue is Windows-only.
package servicehost
