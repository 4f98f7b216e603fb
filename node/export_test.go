package node

// Exported for the tests in package node_test (those of several nodes,
// which use sim's cluster; sim imports node).

// RandomBytes is n bytes of a stream that seed picks.
var RandomBytes = randomBytes
