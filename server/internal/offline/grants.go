package offline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// setGrants gives az the time-bound grants of --grants FILE: the output of
// `temporal-opa grant list -o json` (entries {"grant": {...}, ...}) or an
// array of grants. Nothing to do without a file.
func setGrants(az *policy.Authorizer, path string) error {
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return &InputError{Err: fmt.Errorf("--grants: %w", err)}
	}
	gs, err := parseGrants(raw)
	if err != nil {
		return &InputError{Err: fmt.Errorf("--grants %s: %w", path, err)}
	}
	az.SetGrants(gs)
	return nil
}

func parseGrants(raw []byte) ([]grants.Grant, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("not a JSON array of grants (as `temporal-opa grant list -o json` prints): %w", err)
	}
	out := make([]grants.Grant, 0, len(entries))
	for i, e := range entries {
		var listed struct {
			Grant *json.RawMessage `json:"grant"`
		}
		if err := json.Unmarshal(e, &listed); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if listed.Grant != nil {
			e = *listed.Grant
		}
		var g grants.Grant
		dec := json.NewDecoder(bytes.NewReader(e))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("entry %d (grant %q): %w", i, g.ID, err)
		}
		out = append(out, g)
	}
	return out, nil
}
