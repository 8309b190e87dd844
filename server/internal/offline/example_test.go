package offline

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// myPolicy is a policy repository as in docs/policy-ci.md: the bundle of
// docs/writing-policies.md's "Writing custom rules", as my-bundle, in the
// single package temporal.custom (the docs use temporal.custom.production;
// TestDocs runs those commands).
var myPolicy = map[string]string{
	"my-bundle/.manifest": `{"roots": ["temporal/custom"], "rego_version": 1, "revision": "2026-11-23.1"}` + "\n",
	"my-bundle/temporal/custom/production.rego": `# METADATA
# title: Production safety rules
package temporal.custom

_destructive := {"TerminateWorkflowExecution", "ResetWorkflowExecution", "DeleteWorkflowExecution"}

deny contains sprintf("%s in namespace %q needs admin", [input.target.method, input.target.namespace]) if {
	input.target.namespace == "production"
	input.target.method in _destructive
	not "admin" in input.claims.system
	not "admin" in input.claims.namespaces.production
}
`,
	"my-bundle/temporal/custom/production_test.rego": `package temporal.custom_test

import data.temporal.authz

_writer := {"subject": "bob", "auth_type": "jwt", "system": [], "namespaces": {"production": ["write"]}, "jwt": {}}

_terminate := {
	"api": "/temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution",
	"service": "temporal.api.workflowservice.v1.WorkflowService", "method": "TerminateWorkflowExecution",
	"namespace": "production", "nexus_endpoint": "", "scope": "namespace", "access": "write", "health_check": false,
}

test_writer_cannot_terminate_in_production if {
	d := authz.decision with input as {"claims": _writer, "target": _terminate}
	d == {"allow": false, "reason": ` + "`" + `TerminateWorkflowExecution in namespace "production" needs admin` + "`" + `}
}
`,
}

// inPolicyRepo writes files into a new temporary directory and makes it the
// working directory until the returned function is called.
func inPolicyRepo(files map[string]string) (done func()) {
	dir, err := os.MkdirTemp("", "policy-repo-")
	if err != nil {
		panic(err)
	}
	for name, content := range files {
		writeFile(filepath.Join(dir, name), content)
	}
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	if err := os.Chdir(dir); err != nil {
		panic(err)
	}
	return func() {
		_ = os.Chdir(wd)
		_ = os.RemoveAll(dir)
	}
}

var durations = regexp.MustCompile(` \([0-9.]+(ns|µs|ms|s)\)`)

func writeFile(path, content string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		panic(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		panic(err)
	}
}

// sh prints a command line as docs/policy-ci.md shows it, then what the command
// prints (stdout, then stderr; at most lines lines when lines > 0; test
// durations left out) and its exit status when not 0.
func sh(lines int, args ...string) {
	fmt.Println("$ temporal-opa " + strings.Join(args, " "))
	out, errOut, status := runCLI("", args...)
	text := durations.ReplaceAllString(strings.TrimRight(out+errOut, "\n"), "")
	if all := strings.Split(text, "\n"); lines > 0 && len(all) > lines {
		text = strings.Join(all[:lines], "\n") + "\n..."
	}
	fmt.Println(text)
	if status != 0 {
		fmt.Println("exit status", status)
	}
}

// policy check: exit 0 when the server activates the bundle; otherwise the
// server's own message with the file and line, and exit status 1.
func ExamplePolicyCheck() {
	defer inPolicyRepo(myPolicy)()
	sh(0, "policy", "check", "my-bundle")

	// A typo the standard `opa check` (without the schema) accepts:
	writeFile("my-bundle/temporal/custom/production.rego", "package temporal.custom\n\ndeny contains \"no\" if input.claim.subject == \"mallory\"\n")
	sh(0, "policy", "check", "my-bundle")

	// A deny of the wrong shape:
	writeFile("my-bundle/temporal/custom/production.rego", "package temporal.custom\n\ndeny := \"no\"\n")
	sh(0, "policy", "check", "my-bundle")
	// Output:
	// $ temporal-opa policy check my-bundle
	// ok: the server activates bundle policy from my-bundle (revision "2026-11-23.1"), layered on the embedded default policy, decision data.temporal.authz.decision
	// $ temporal-opa policy check my-bundle
	// bundle policy from my-bundle: policy not activated (compile): bundle activation failed: 1 error occurred: /temporal/custom/production.rego:3: rego_type_error: undefined ref: input.claim.subject
	// 	input.claim.subject
	// 	      ^
	// 	      have: "claim"
	// 	      want (one of): ["caller" "claims" "grant" "grants" "operation" "request" "request_type" "target"]
	// exit status 1
	// $ temporal-opa policy check my-bundle
	// bundle policy from my-bundle: policy not activated (compile): bundle policy: /temporal/custom/production.rego:3: data.temporal.custom.deny must be a set of reason strings; write it as: deny contains "why" if { ... }
	// exit status 1
}

// policy test: opa test on the bundle layered on the default policy.
func ExamplePolicyTest() {
	defer inPolicyRepo(myPolicy)()
	sh(0, "policy", "test", "my-bundle")
	sh(0, "policy", "test", "-v", "my-bundle")
	writeFile("my-bundle/temporal/custom/production.rego", "package temporal.custom\n")
	sh(0, "policy", "test", "my-bundle")
	// Output:
	// $ temporal-opa policy test my-bundle
	// PASS: 1/1
	// $ temporal-opa policy test -v my-bundle
	// my-bundle/temporal/custom/production_test.rego:13:
	// data.temporal.custom_test.test_writer_cannot_terminate_in_production: PASS
	// --------------------------------------------------------------------------------
	// PASS: 1/1
	// $ temporal-opa policy test my-bundle
	// my-bundle/temporal/custom/production_test.rego:13:
	// data.temporal.custom_test.test_writer_cannot_terminate_in_production: FAIL
	// --------------------------------------------------------------------------------
	// FAIL: 1/1
	// exit status 2
}

// policy export: the default policy and the input schema, for opa, editors
// and linters.
func ExamplePolicyExport() {
	defer inPolicyRepo(myPolicy)()
	sh(0, "policy", "export", ".temporal-opa")
	// Output:
	// $ temporal-opa policy export .temporal-opa
	// wrote .temporal-opa/.manifest
	// wrote .temporal-opa/temporal/authz/authz.rego
	// wrote .temporal-opa/temporal/grants/grants.rego
	// wrote .temporal-opa/input.schema.json
	//
	// The embedded default policy (bundle roots temporal/authz and temporal/grants) and the schema of its input. With OPA:
	//   opa test .temporal-opa my-bundle
	//   opa check --strict --schema .temporal-opa/input.schema.json .temporal-opa my-bundle
	// or with temporal-opa alone: temporal-opa policy test my-bundle, temporal-opa policy check my-bundle
}

// policy explain: why a call is denied.
func ExamplePolicyExplain() {
	defer inPolicyRepo(myPolicy)()
	sh(14, "policy", "explain", "--permissions", "production:write", "--api", "TerminateWorkflowExecution", "--namespace", "production", "my-bundle")
	// Output:
	// $ temporal-opa policy explain --permissions production:write --api TerminateWorkflowExecution --namespace production my-bundle
	// denied: TerminateWorkflowExecution in namespace "production" needs admin
	// api: /temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution
	//
	// Rules that produced a value (file:line, rule, value):
	//   /temporal/custom/production.rego:5  data.temporal.custom._destructive         ["DeleteWorkflowExecution","ResetWorkflowExecution","TerminateWorkflowExecution"]
	//   /temporal/custom/production.rego:7  data.temporal.custom.deny                 "TerminateWorkflowExecution in namespace \"production\" needs admin"
	//   /temporal/authz/authz.rego:182      data.temporal.authz._custom_deny_reasons  "TerminateWorkflowExecution in namespace \"production\" needs admin"
	//   /temporal/authz/authz.rego:30       data.temporal.authz.decision              {"allow":false,"reason":"TerminateWorkflowExecution in namespace \"production\" needs admin"}
	//
	// Trace (the decision's package and package temporal.custom):
	// query:1                                 Enter data.temporal.authz.decision = _
	// query:1                                 | Eval data.temporal.authz.decision = _
	// /temporal/authz/authz.rego:30           | Enter data.temporal.authz.decision
	// /temporal/authz/authz.rego:31           | | Eval __local249__ = data.temporal.authz._custom_deny_reasons
	// ...
	// exit status 1
}

// policy can-i: what a caller may do, API by API.
func ExamplePolicyCanI() {
	defer inPolicyRepo(myPolicy)()
	sh(0, "policy", "can-i", "--permissions", "production:admin", "--namespace", "production", "--service", "operator", "my-bundle")
	// Output:
	// $ temporal-opa policy can-i --permissions production:admin --namespace production --service operator my-bundle
	// Caller: sub "dev-user" (--permissions) with production:admin; namespace APIs decided in "production", cluster APIs with no namespace.
	//
	// temporal.api.operatorservice.v1.OperatorService: 4 of 12 allowed
	//   allow  AddSearchAttributes       namespace  admin
	//   allow  RemoveSearchAttributes    namespace  admin
	//   allow  ListSearchAttributes      namespace  read
	//   allow  DeleteNamespace           namespace  admin
	//   deny   AddOrUpdateRemoteCluster  cluster    admin  AddOrUpdateRemoteCluster is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   RemoveRemoteCluster       cluster    admin  RemoveRemoteCluster is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   ListClusters              cluster    admin  ListClusters is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   GetNexusEndpoint          cluster    admin  GetNexusEndpoint is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   CreateNexusEndpoint       cluster    admin  CreateNexusEndpoint is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   UpdateNexusEndpoint       cluster    admin  UpdateNexusEndpoint is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   DeleteNexusEndpoint       cluster    admin  DeleteNexusEndpoint is a cluster API and requires admin on temporal-system; caller has no role
	//   deny   ListNexusEndpoints        cluster    admin  ListNexusEndpoints is a cluster API and requires admin on temporal-system; caller has no role
}
