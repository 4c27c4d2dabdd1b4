package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
	"golang.org/x/term"
)

func init() {
	register(command{name: "unlock", summary: "Break a host lock left by a dead run, naming its holder and asking first", run: runUnlock})
	document("unlock", commandDoc{args: "HOST [PATH...]",
		text: `Remove the lock a run left on a host, after naming its holder (operator, machine, agent pid, since when, when last heard from) ` +
			`and asking for 'yes'. An agent takes over a lock whose holder is gone by itself; gsd unlock is for the lock it cannot judge ` +
			`(a hung agent, a reused pid, another machine's name). Breaking the lock of a run that still works lets two runs change the host at once: ` +
			`make sure it is dead first.`,
		arguments: [][2]string{{"HOST", "the host, as NAME or host.NAME"}, pathArg},
		examples:  []string{"gsd unlock web1", "gsd unlock host.web1 -force"}})
}

// unlockConn is what breaking a lock needs of a host's agent.
type unlockConn interface {
	Facts(ctx context.Context) (protocol.Facts, error)
	Call(ctx context.Context, op string, args, result any) error
	Close() error
}

func runUnlock(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "unlock", "HOST [PATH...]")
	var cf configFlags
	cf.register(fs)
	force := fs.Bool("force", false, "break the lock without asking")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError{errors.New("gsd unlock needs a host")}
	}
	cfg, err := loadStrict(env, &cf, fs.Args()[1:])
	if err != nil {
		return err
	}
	h := cfg.Host(strings.TrimPrefix(fs.Arg(0), "host."))
	if h == nil {
		return fmt.Errorf("no host %s in the configuration", fs.Arg(0))
	}
	ctx := context.Background()
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	return unlockHost(ctx, env, h, dialHost[unlockConn](agent, nil), *force, time.Now)
}

// unlockHost reads who holds h's lock, says so, asks unless force, and
// breaks exactly that lock: if another run took it meanwhile, the agent
// refuses.
func unlockHost(ctx context.Context, env *cliEnv, h *config.Host, dial func(context.Context, *config.Host) (unlockConn, error), force bool, now func() time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, hostReadTimeout)
	defer cancel()
	conn, err := dial(ctx, h)
	if err != nil {
		return err
	}
	defer conn.Close()
	f, err := conn.Facts(ctx)
	if err != nil {
		return err
	}
	if f.Lock == nil {
		if f.LockError != "" {
			return fmt.Errorf("host.%s: its lock file cannot be read (%s); the agent takes it over once it is old enough", h.Name, f.LockError)
		}
		fmt.Fprintf(env.stdout, "host.%s is not locked.\n", h.Name)
		return nil
	}
	l := f.Lock
	fmt.Fprintf(env.stdout, "host.%s is locked by %s\n", h.Name, holderText(l, now()))
	if l.Alive && !l.Heard.IsZero() && now().Sub(l.Heard) < 30*time.Second {
		fmt.Fprintf(env.stdout, "Its holder was heard from %s ago: it may still be working. Breaking its lock lets two runs change the host at once.\n",
			now().Sub(l.Heard).Round(time.Second))
	}
	if !force {
		if err := askYes(env, fmt.Sprintf("Break the lock of host.%s? Only 'yes' will be accepted: ", h.Name), "pass -force"); err != nil {
			return err
		}
	}
	var removed protocol.LockHolder
	if err := conn.Call(ctx, protocol.OpBreakLock, protocol.BreakLockArgs{PID: l.PID, Since: l.Since}, &removed); err != nil {
		return fmt.Errorf("host.%s: breaking the lock: %w", h.Name, err)
	}
	fmt.Fprintf(env.stdout, "Removed the lock of host.%s held by %s.\n", h.Name, holderText(&removed, now()))
	return nil
}

// holderText names a lock's holder as a person needs it to decide.
func holderText(l *protocol.LockHolder, now time.Time) string {
	who := l.Operator
	if who == "" {
		who = l.User
	}
	s := fmt.Sprintf("%s (user %s, agent pid %d on %s) since %s", who, l.User, l.PID, l.Machine, l.Since.UTC().Format(time.RFC3339))
	if !l.Heard.IsZero() {
		s += fmt.Sprintf(", last heard from %s ago", now.Sub(l.Heard).Round(time.Second))
	}
	return s
}

// askYes asks question on the terminal and accepts only "yes". Without a
// terminal it refuses rather than hang or guess; hint says what to pass
// instead.
func askYes(env *cliEnv, question, hint string) error {
	if f, ok := env.stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("no terminal to confirm on: %s", hint)
	}
	fmt.Fprint(env.stdout, "\n"+question)
	line, _ := bufio.NewReader(env.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return &exitError{code: 1, err: errors.New("cancelled")}
	}
	return nil
}
