package eventstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validate checks every line of stream against the schema, and that the
// stream opens with a version event and ends with a summary. It returns
// the event types in order.
func Validate(stream []byte) ([]string, error) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "events.schema.json")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("events.schema.json", doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile("events.schema.json")
	if err != nil {
		return nil, err
	}
	var types []string
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			return types, fmt.Errorf("line %d is not JSON: %v: %s", n, err, line)
		}
		if err := sch.Validate(v); err != nil {
			return types, fmt.Errorf("line %d: %v\n%s", n, err, line)
		}
		var ev struct{ Type string }
		json.Unmarshal(line, &ev)
		types = append(types, ev.Type)
	}
	switch {
	case len(types) == 0:
		return nil, fmt.Errorf("no events")
	case types[0] != "version":
		return types, fmt.Errorf("the stream opens with %s, not version", types[0])
	case types[len(types)-1] != "summary":
		return types, fmt.Errorf("the stream ends with %s, not summary", types[len(types)-1])
	case slices.Index(types, "summary") != len(types)-1:
		return types, fmt.Errorf("a summary before the end")
	}
	return types, nil
}
