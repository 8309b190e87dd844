// Package source feeds OPA bundles to a running policy: a local bundle directory
// or `opa build` tarball watched for changes, and remote bundle servers polled
// with OPA's own downloader.
//
// Every source delivers each new bundle to a [Sink], normally a
// *policy.Authorizer, with SetBundle under the source's name. The sink compiles,
// type-checks and prepares the bundle and swaps it in atomically; a bundle it
// rejects leaves the previous policy active. A source never retries a rejected
// bundle on its own: it waits for the next change.
//
// # Local bundles
//
// [NewFile] loads a bundle directory or tarball (policy.LoadBundle), activates it
// and then watches it with fsnotify. Editor saves (write in place, or write a
// temporary file and rename it over), `cp` of a new tarball over the old one, and
// a Kubernetes ConfigMap or Secret update (the kubelet writes a new timestamped
// directory and flips the ..data symlink) are all picked up: the source watches
// the directory holding the path, every link of the path's symlink chain and
// every directory of the bundle, waits until the events have been quiet for
// [Options.Debounce] (250 ms by default, at most four times that while events
// keep coming), and reloads only when the bundle's files changed. A bundle
// directory holding a ..data symlink (a ConfigMap volume mounted as the bundle
// directory) is read through ..data, so the kubelet's timestamped copies are not
// read twice.
//
// The first load is done by NewFile: an error there is returned, so a server
// that requires its bundle can refuse to start. Later errors are logged once per
// change, with the file and line the sink reports, and kept in [Status].
//
// # Remote bundles
//
// [ParseConfig] reads the services, bundles and keys sections of a standard OPA
// configuration (YAML or JSON, the file `opa run --config-file` takes) with
// OPA's parsers (v1/config, v1/keys, v1/plugins/rest, v1/plugins/bundle), and
// [Open] starts one source per bundle. A bundle served by a service is
// downloaded by OPA's v1/download: ETag and 304 Not Modified, periodic polling
// between polling.min_delay_seconds and polling.max_delay_seconds, long polling
// when the server supports it, and signature verification when the bundle has a
// signing block (or keys are configured: then a signature, when present, is
// verified). A bundle that fails to download or verify never reaches the sink;
// a server that goes away leaves the last good policy active and is retried with
// backoff. A bundle whose resource is a file:// URL is a watched local bundle;
// such bundles are read as policy.LoadBundle reads them, without signature
// verification, so a signing block on one is a configuration error.
//
// ParseConfig is stricter than OPA where OPA would run but not as intended: an
// unknown key, a bundle naming an unknown service or key, a bundle without a
// service when several are defined (OPA would pick one at random), polling
// without pause, trigger: manual (nothing would trigger it), persist, custom
// auth plugins and OCI services are errors naming the setting.
//
//	services:
//	  acme:
//	    url: https://bundles.acme.example
//	    credentials:
//	      bearer:
//	        token: "..."
//	bundles:
//	  authz:
//	    service: acme
//	    resource: temporal/authz.tar.gz
//	    polling:
//	      min_delay_seconds: 10
//	      max_delay_seconds: 20
//	    signing:
//	      keyid: release
//	keys:
//	  release:
//	    algorithm: RS256
//	    key: |
//	      -----BEGIN PUBLIC KEY-----
//	      ...
//
// # Status and shutdown
//
// Each source reports a [Status]: what it serves from, the revision and ETag of
// the last bundle it activated and when, the last error and when, and counts of
// activations and failures. Close stops a source's goroutines and waits for them.
package source
