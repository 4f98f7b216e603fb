// Package api is the shoal daemon's HTTP API under /api/v1: the JSON
// types its routes send and receive, and a Go client with one method per
// route. node reports in these types (its Info, TransferInfo, … are
// aliases of them), web serves them as node returns them, cmd/shoal talks
// to the daemon only through Client, and tests of either use both.
//
// Files: types.go holds the request and response types, errors.go the
// error body, the error codes and *Error, client.go the Client and its
// methods.
//
// api imports no other shoal package: it is the contract between them,
// so it stays below all of them.
package api
