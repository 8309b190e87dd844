// Package decisionlog is temporal-opa's audit trail: one OPA decision-log event
// for every call the [policy.Authorizer] decides, cache hits included, written by
// OPA's own decision-log plugin (v1/plugins/logs) to the console and/or uploaded
// to a decision-log service, as configured by the decision_logs section of a
// standard OPA configuration file.
//
//	services:
//	  audit:
//	    url: https://audit.example.com
//	    credentials: {bearer: {token: "${AUDIT_TOKEN}"}}
//	decision_logs:
//	  service: audit
//	  console: false
//	  reporting:
//	    min_delay_seconds: 5
//	    max_delay_seconds: 10
//	    buffer_size_limit_bytes: 33554432
//
// The configuration is OPA's, as OPA documents it. A [Logger] hosts the plugin
// in a private plugins.Manager; it is a [policy.Recorder]:
//
//	dl, err := decisionlog.New(ctx, opaConfig, decisionlog.Options{})
//	az, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, nil)
//	defer dl.Close(ctxWithDeadline) // flushes what it can
//
// # What an event holds
//
// decision_id (also at the end of a denied call's reason), path, input (the input
// document: claims with those of the verified token's claims the policy reads,
// never the token; target; input.request only when the policy reads it), result
// {allow, reason} (for an allow, the policy's reason: which rule allowed), error
// {code, message} when the policy could not decide, bundles with their revisions,
// timestamp, requested_by (the caller's address), metrics (timer_rego_query_eval_ns,
// timer_server_handler_ns), labels, and custom: {cached, api, namespace, subject,
// issuer, tls, mode, granted_roles, erased, truncated, request_paths}. tls is
// the caller's verified client certificate: subject, issuer, spiffe_id, SANs,
// serial, fingerprint_sha256, not_after. granted_roles
// lists the roles the policy's role rules granted the caller for the call, each
// {role, namespace ("" for a system role), rule}. String values longer than
// MaxValueBytes are cut and listed in custom.truncated.
//
// # Secrets
//
// Before an event leaves temporal-opa the fields of input.request that carry
// secrets or user data are erased: every task token and every payload (any field
// whose message type is temporal.api.common.v1.Payload, Payloads or DataBlob, or
// an Any), Nexus headers, internal callback data, namespace security tokens and
// failure messages and stack traces, found through the request's proto
// descriptors; custom.erased lists them as JSON pointers. Options.KeepPayloads
// turns this off. The token claims the policy does not read are erased too
// (listed the same way); Options.KeepClaims keeps them. The operator's own
// system.log.mask and system.log.drop rules (in any activated bundle) then run as
// in OPA; an event whose mask fails is dropped, never logged unmasked.
//
// # Never slower
//
// Record only queues the event (a bounded queue; when it is full the event is
// dropped and counted): building the input, masking and writing happen on the
// Logger's own goroutine, so neither logging nor a slow or down service delays
// a call.
//
// # At line rate: the upload path
//
// With a service, no console and no rate limit (max_decisions_per_second),
// and while no system.log rules are loaded, the Logger encodes and uploads
// events itself instead of through the plugin's Log: OPA's plugin converts
// every event to an OPA value for the drop and mask rules (the result and
// custom fields through a JSON round trip), evaluates both rules even when
// there are none, and then encodes the event by reflection; its upload buffer
// drops whole chunks and counts chunks, not events. That path costs about
// 120 µs of CPU per event on a 2-core machine (BenchmarkDecisionLogLineRate's
// plugin_cpu_us/event, getrusage; BenchmarkLogEvent's 28-45 µs/op is wall
// time with both cores busy), this one 8.6-10.8 µs; the profiles' top entries
// are in bench_test.go. The upload path keeps what goes on the wire
// exactly: OPA's event (logs.EventV1's JSON, same fields; TestEventEncodingIsOPAs
// decodes both and compares), written once from the evaluated input value
// (policy.Event.InputValue; the JSON document is built only when input.request
// or an over-long string must be erased or cut), gzip'd JSON arrays of at most
// reporting.upload_size_limit_bytes POSTed to the resource (/logs) with OPA's
// REST client and the service's credentials, on OPA's schedule (trigger
// periodic: every min..max delay; immediate: as soon as a batch is full), one
// upload at a time and in order, so each client's events arrive in the order
// of its calls. Waiting batches are bounded: buffer_size_limit_events for
// buffer_type event, else buffer_size_limit_bytes of compressed batches
// (DefaultBufferBytes, 32 MiB, when unset: OPA's default is unlimited); past
// the bound the oldest batches are dropped and their events counted exactly
// (Status().Dropped, Options.OnDrop), a batch being uploaded is never dropped,
// and a failed upload is retried with OPA's backoff, never lost. The gzip
// level is the fastest (klauspost/compress). With system.log rules loaded,
// or console output, events go through OPA's plugin as before
// (Options.PluginUpload forces it).
package decisionlog
