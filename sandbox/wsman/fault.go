package wsman

import (
	"fmt"
	"net/http"
)

// Fault is a SOAP fault with the WSManFault detail Windows adds. Codes and
// texts follow the WinRM service's own (wsmerror.h), because clients key
// on them: pywinrm turns code 2150858793 into its retryable
// WinRMOperationTimeoutError, and masterzen/winrm looks for the word
// "OperationTimeout" in the text.
type Fault struct {
	HTTPStatus int
	Code       string // s:Sender or s:Receiver
	Subcode    string // a prefixed QName such as w:TimedOut
	Reason     string
	WSManCode  uint32
	// Detail is an optional w:FaultDetail URI.
	Detail string
}

func (f *Fault) Error() string {
	return fmt.Sprintf("%s (%s, %d)", f.Reason, f.Subcode, f.WSManCode)
}

// Windows error codes (FACILITY_WINRM) carried in WSManFault/@Code.
const (
	CodeActionNotSupported  = 0x80338013
	CodeInvalidHeader       = 0x8033800F
	CodeHeaderRequired      = 0x80338011
	CodeSoapVersionMismatch = 0x8033800D
	CodeInvalidBody         = 0x80338027
	CodeOperationTimedOut   = 0x80338029
	CodeEncodingLimit       = 0x80338035
	CodeInvalidOptions      = 0x80338039
	CodeInvalidParameter    = 0x8033803A
	CodeInvalidResourceURI  = 0x8033803B
	CodeSchemaValidation    = 0x80338041
	CodeInvalidXML          = 0x80338043
	CodeShellNotFound       = 0x8033805B
	CodeInternalError       = 0x80338004
)

// FaultDetailMaxEnvelopeSize marks an EncodingLimit fault caused by the
// envelope size, as the WS-Management specification defines it.
const FaultDetailMaxEnvelopeSize = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize"

// TimedOut is Windows' answer to a Receive that saw no output within the
// request's OperationTimeout. Clients treat it as "poll again".
func TimedOut() *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Receiver",
		Subcode:    "w:TimedOut",
		Reason:     "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
		WSManCode:  CodeOperationTimedOut,
	}
}

// EnvelopeTooLarge answers a request bigger than the server's
// MaxEnvelopeSize.
func EnvelopeTooLarge(limit int) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:EncodingLimit",
		Reason: fmt.Sprintf("The WS-Management service cannot process the request because the encoding of the request exceeds an internal encoding limit. "+
			"The request is larger than the MaxEnvelopeSize of %d bytes. Reconfigure the client to send messages which fit the encoding limits of the service.", limit),
		WSManCode: CodeEncodingLimit,
		Detail:    FaultDetailMaxEnvelopeSize,
	}
}

// ResponseTooLarge answers a request whose MaxEnvelopeSize is too small
// for any response to it.
func ResponseTooLarge(limit int) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:EncodingLimit",
		Reason: fmt.Sprintf("The WS-Management service cannot process the request because the response would exceed the MaxEnvelopeSize of %d bytes in the request. "+
			"Reconfigure the client to accept larger messages.", limit),
		WSManCode: CodeEncodingLimit,
		Detail:    FaultDetailMaxEnvelopeSize,
	}
}

// ShellNotFound answers any request naming a ShellId the server does not
// hold.
func ShellNotFound(shellID string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:InvalidSelectors",
		Reason: fmt.Sprintf("The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the server. "+
			"Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. "+
			"Provide the correct ShellId or create a new shell and retry the operation.", shellID),
		WSManCode: CodeShellNotFound,
		Detail:    "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue",
	}
}

// CommandNotFound answers a request naming a CommandId the shell does not
// hold.
func CommandNotFound(commandID string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:InvalidParameter",
		Reason:     fmt.Sprintf("The WS-Management service cannot process the request because the CommandId %s is not valid for this shell.", commandID),
		WSManCode:  CodeInvalidParameter,
	}
}

// ActionNotSupported answers an action the service does not implement.
func ActionNotSupported(action string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "a:ActionNotSupported",
		Reason:     fmt.Sprintf("The WS-Management service does not support the action specified in the request: %s", action),
		WSManCode:  CodeActionNotSupported,
	}
}

// InvalidResourceURI answers a resource other than the cmd shell.
func InvalidResourceURI(uri string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:InvalidResourceURI",
		Reason:     fmt.Sprintf("The WS-Management service cannot process the request. The resource URI %q is missing or it has an incorrect format.", uri),
		WSManCode:  CodeInvalidResourceURI,
	}
}

// InvalidXML answers a body that is not well-formed or not acceptable XML.
func InvalidXML(why string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusBadRequest,
		Code:       "s:Sender",
		Subcode:    "w:SchemaValidationError",
		Reason:     "The WS-Management service cannot process the request because the XML is invalid: " + why,
		WSManCode:  CodeInvalidXML,
	}
}

// SoapVersionMismatch answers an envelope that is not SOAP 1.2.
func SoapVersionMismatch() *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:VersionMismatch",
		Reason:     "The WS-Management service does not support the SOAP version specified in the request.",
		WSManCode:  CodeSoapVersionMismatch,
	}
}

// MissingHeader answers a request without a required addressing header.
func MissingHeader(name string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "a:MessageInformationHeaderRequired",
		Reason:     "The WS-Management service cannot process the request. The request does not have all the expected SOAP headers: " + name,
		WSManCode:  CodeHeaderRequired,
	}
}

// InvalidHeader answers a header with a value the service cannot use.
func InvalidHeader(why string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "a:InvalidMessageInformationHeader",
		Reason:     "The WS-Management service cannot process the request. The request contains one or more invalid SOAP headers: " + why,
		WSManCode:  CodeInvalidHeader,
	}
}

// InvalidBody answers a request whose body lacks what its action needs.
func InvalidBody() *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:InvalidBody",
		Reason:     "The WS-Management service cannot process the request because the request packet does not have a valid SOAP body.",
		WSManCode:  CodeInvalidBody,
	}
}

// InvalidParameter answers a body value the service cannot use.
func InvalidParameter(why string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Sender",
		Subcode:    "w:InvalidParameter",
		Reason:     "The WS-Management service cannot process the request because a parameter for the operation is not valid: " + why,
		WSManCode:  CodeInvalidParameter,
	}
}

// InternalError reports a failure on the host side, such as a command
// that could not be started.
func InternalError(why string) *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Receiver",
		Subcode:    "w:InternalError",
		Reason:     why,
		WSManCode:  CodeInternalError,
	}
}

// CodeAccessDenied is E_ACCESSDENIED, what Windows' WinRS shell puts in
// the WSManFault of a user it does not let in: authenticated, but not an
// administrator.
const CodeAccessDenied = 0x80070005

// AccessDenied is Windows' answer when an authenticated account that is
// not an administrator (a member of Remote Management Users only, or a
// local administrator whose token UAC filtered) asks for a cmd shell.
func AccessDenied() *Fault {
	return &Fault{
		HTTPStatus: http.StatusInternalServerError,
		Code:       "s:Receiver",
		Subcode:    "w:InternalError",
		Reason:     "Access is denied. ",
		WSManCode:  CodeAccessDenied,
	}
}
