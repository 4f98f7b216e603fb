package api

import (
	"errors"
	"net/http"
)

// ErrorBody is every API error: {"error": "<one sentence>", "code": "<kind>"}.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// Error codes: the kind of failure, for scripts (`shoal --json` prints
// them beside the message).
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeNotFound     = "not_found"
	CodeTimeout      = "timeout"
	CodeNoSpace      = "no_space"
	CodeDaemonError  = "daemon_error"
	CodeError        = "error" // anything else
	// CodeNoDaemon is no answer at all: nothing listens at the address.
	CodeNoDaemon = "no_daemon"
)

// CodeFor is the code an HTTP status stands for.
func CodeFor(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return CodeBadRequest
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return CodeUnauthorized
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusGatewayTimeout:
		return CodeTimeout
	case status == http.StatusInsufficientStorage:
		return CodeNoSpace
	case status >= 500:
		return CodeDaemonError
	}
	return CodeError
}

// Sentinels an *Error matches with errors.Is by its code.
var (
	// ErrNotFound: the content, transfer or route does not exist (404).
	ErrNotFound = errors.New("api: not found")
	// ErrTimeout: no provider was found in time (504).
	ErrTimeout = errors.New("api: timeout")
	// ErrBadRequest: the request must be fixed (400).
	ErrBadRequest = errors.New("api: bad request")
	// ErrUnauthorized: the token is missing or wrong, or the request
	// was refused (401, 403).
	ErrUnauthorized = errors.New("api: unauthorized")
	// ErrNoSpace: the node's store is full (507).
	ErrNoSpace = errors.New("api: no space")
	// ErrNoDaemon: nothing listens at the client's address (Status 0).
	ErrNoDaemon = errors.New("api: no daemon")
)

var sentinelCodes = map[error]string{
	ErrNotFound:     CodeNotFound,
	ErrTimeout:      CodeTimeout,
	ErrBadRequest:   CodeBadRequest,
	ErrUnauthorized: CodeUnauthorized,
	ErrNoSpace:      CodeNoSpace,
	ErrNoDaemon:     CodeNoDaemon,
}

// Error is an answer other than 2xx: its status, the server's code and
// its message; or, with Status 0 and CodeNoDaemon, a daemon that is not
// there. Error() is the message alone, the server's own sentence.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is matches the sentinel of e's code (errors.Is(err, api.ErrNotFound)).
func (e *Error) Is(target error) bool {
	code, ok := sentinelCodes[target]
	return ok && code == e.Code
}
