package sandbox_test

import (
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

func hclPos() hcl.Pos { return hcl.Pos{Line: 1, Column: 1} }

// agentSession is the little of the agent protocol the sandbox test needs.
type agentSession struct{ c *client.Client }

func agentClient(r io.Reader, w io.Writer) (*agentSession, error) {
	c, err := client.New(r, w)
	if err != nil {
		return nil, err
	}
	return &agentSession{c}, nil
}

func (a *agentSession) hello() protocol.Hello { return a.c.Hello() }

// createService stages program and creates a manual-start wrapped service
// running it.
func (a *agentSession) createService(name string, program []byte) error {
	art, err := a.c.StageBytes("program.exe", program)
	if err != nil {
		return err
	}
	spec := protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeWrapped, Artifact: art.SHA256, Start: protocol.StartManual,
		DisplayName: "gsd sandbox test", Args: []string{"version"},
	}
	var staged protocol.StageReleaseResult
	if err := a.c.Call(protocol.OpStageRelease, protocol.StageReleaseArgs{
		Kind: protocol.KindService, Name: name, Spec: protocol.MustArgs(spec.WithoutSecrets()), Secrets: spec.Secrets(),
	}, &staged); err != nil {
		return err
	}
	// Created, not started: effect none.
	return a.c.Call(protocol.OpActivate, protocol.ActivateArgs{
		Kind: protocol.KindService, Name: name, Release: staged.ID, Effect: protocol.EffectNone, TimeoutMS: 30000,
	}, nil)
}

func (a *agentSession) serviceInFacts(name string) (bool, error) {
	var f protocol.Facts
	if err := a.c.Call(protocol.OpFacts, nil, &f); err != nil {
		return false, err
	}
	for _, s := range f.Services {
		if s.Name == name && s.Installed {
			return true, nil
		}
	}
	return false, nil
}

func (a *agentSession) deleteService(name string) error {
	return a.c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name, TimeoutMS: 30000}, nil)
}
