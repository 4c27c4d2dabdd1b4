package winecmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// WineHome is where the template prefix lives: $GSD_WINE_HOME, by default
// ~/.cache/gsd/wine (made by `make wine-prefix`).
func WineHome() string {
	if h := os.Getenv("GSD_WINE_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "gsd", "wine")
}

// TemplateDir is the ready template prefix.
func TemplateDir() string { return filepath.Join(WineHome(), "template") }

// ErrNoTemplate means `make wine-prefix` has not been run.
var ErrNoTemplate = errors.New("no ready Wine template prefix; run 'make wine-prefix'")

// CheckTemplate reports whether the template is ready to clone.
func CheckTemplate() error {
	if _, err := os.Stat(filepath.Join(TemplateDir(), ".gsd-ready")); err != nil {
		return fmt.Errorf("%w (looked in %s)", ErrNoTemplate, TemplateDir())
	}
	if _, err := exec.LookPath("wine"); err != nil {
		return fmt.Errorf("wine is not installed (apt: wine wine64): %w", err)
	}
	return nil
}

// ClonePrefix copies the template to dst, which must not exist. A copy
// takes about two seconds where booting a prefix takes several.
func ClonePrefix(dst string) error {
	if err := CheckTemplate(); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s already exists", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".cloning"
	_ = os.RemoveAll(tmp)
	if out, err := exec.Command("cp", "-a", TemplateDir(), tmp).CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("copying the template prefix: %v: %s", err, out)
	}
	if err := IsolatePrefix(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("isolating the prefix: %w", err)
	}
	return os.Rename(tmp, dst)
}

// IsolatePrefix cuts a prefix's links to the rest of the machine that Wine
// makes by default: the Z: drive (the whole filesystem), other dosdevices
// entries that lead outside the prefix (serial ports and the like), and
// the profile folders under drive_c/users that link to the Unix user's
// home directory. A host's commands run as the sandbox's user, often root,
// so a path on one of them would reach the real machine's files. The
// profile folders become empty directories, as on a fresh Windows account.
func IsolatePrefix(prefix string) error {
	abs, err := filepath.Abs(prefix)
	if err != nil {
		return err
	}
	devs := filepath.Join(abs, "dosdevices")
	entries, err := os.ReadDir(devs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(devs, e.Name())
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if target, err := os.Readlink(p); err == nil && linkInside(abs, devs, target) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	users, err := os.ReadDir(filepath.Join(abs, "drive_c", "users"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, u := range users {
		dir := filepath.Join(abs, "drive_c", "users", u.Name())
		if u.Type()&os.ModeSymlink != 0 {
			if err := os.Remove(dir); err != nil {
				return err
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			continue
		}
		if !u.IsDir() {
			continue
		}
		folders, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range folders {
			if f.Type()&os.ModeSymlink == 0 {
				continue
			}
			p := filepath.Join(dir, f.Name())
			if target, err := os.Readlink(p); err == nil && linkInside(abs, dir, target) {
				continue
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkInside reports whether a link in dir with the given target names a
// path inside prefix, judged lexically: the prefix is being built and the
// target need not exist.
func linkInside(prefix, dir, target string) bool {
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, target)
	}
	rel, err := filepath.Rel(prefix, filepath.Clean(target))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// StopWineserver ends the prefix's wineserver and every Windows process in
// it, waiting until they are gone.
func StopWineserver(prefix string) error {
	cmd := exec.Command("wineserver", "-k")
	cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix)
	_ = cmd.Run() // fails when none is running
	wait := exec.Command("wineserver", "-w")
	wait.Env = cmd.Env
	return wait.Run()
}

// StartWineserver starts a persistent wineserver for the prefix so each
// command does not pay for starting one. It runs until StopWineserver.
func StartWineserver(prefix string) error { return StartWineserverLinger(prefix, 0) }

// StartWineserverLinger is StartWineserver for owners that may die
// without cleaning up (a test binary killed at its timeout): the server
// exits by itself once no Windows program has run for linger.
func StartWineserverLinger(prefix string, linger time.Duration) error {
	arg := "-p"
	if linger > 0 {
		arg = fmt.Sprintf("-p%d", int(linger.Seconds()))
	}
	cmd := exec.Command("wineserver", arg)
	cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
	return cmd.Run()
}
