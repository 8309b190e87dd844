// Package projection decides what of a call the Authorizer's fast path looks
// at: it analyzes a compiled policy for the parts of the input document it may
// read (Analyze), keys a call's decision by exactly those values (Reads.Key),
// and builds the input with only those values (Reads.Input). Whole builds the
// whole document, for tools and for the plain path the fast one is tested
// against.
//
// # Soundness
//
// The fast path must decide every call as the plain path does (the whole
// document, no cache). It does when, for every value the policy may read,
// the projected input holds the same value as the whole document, and the key
// holds that value, tagged and length-prefixed. The analysis over-approximates
// what is read: a reference reads its path and all below it, a computed key
// reads every key, a parent read as a whole (input.claims, input, a function
// argument) reads all below it, and a term it does not know reads everything.
// Its one narrowing, the target namespace's roles alone, is taken only where
// the analysis proves the key is input.target.namespace before every use (see
// Analyze). Decisions are not reused for policies that replace input with
// `with`, call a built-in whose results vary between calls with the same
// arguments, or read the whole request (Reads.Cacheable).
//
// The differential tests of package policy (TestProjectionDifferential,
// TestProjectionTrickyPolicies, FuzzProjection) check this on generated
// policies: the fast path against Whole, call by call.
package projection
