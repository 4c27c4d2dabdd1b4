package client_test

import (
	"context"
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"io"
	"testing"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

func TestClientAgainstAgent(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	a := agent.New(agent.Options{Root: testfs.TempDir(t), Services: scm.New()})
	go func() { a.Serve(context.Background(), inR, outW); outW.Close() }()
	c, err := client.New(outR, inW)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hello().ProtocolVersion != protocol.Version {
		t.Fatalf("hello %+v", c.Hello())
	}
	c.ChunkSize = 7
	res, err := c.StageBytes("x.exe", []byte("some artifact bytes"))
	if err != nil || res.Size != 19 {
		t.Fatalf("stage: %+v %v", res, err)
	}
	var f protocol.Facts
	if err := c.Call(protocol.OpFacts, nil, &f); err != nil || len(f.Artifacts) != 1 {
		t.Fatalf("facts: %+v %v", f, err)
	}
	err = c.Call(protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: "../x"}, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code() != protocol.CodeInvalidName {
		t.Fatalf("got %v", err)
	}
	inW.Close()
}
