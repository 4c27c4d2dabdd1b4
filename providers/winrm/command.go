package winrm

import (
	"crypto/rand"
	"fmt"
	"strings"

	mz "github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

const (
	actionCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
	resourceCmd   = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
	anonymous     = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

// newCommandRequest is the WinRS Command message that runs commandLine
// through cmd.exe. gsd streams stdin into what it starts (uploads, agent
// requests), so stdin is a pipe, not a console: WINRS_CONSOLEMODE_STDIN
// is FALSE, as Ansible sends it. masterzen/winrm's builder hard-codes
// TRUE, which on Windows gives the process a console input instead.
func newCommandRequest(url, shellID, commandLine string, params *mz.Parameters, messageID string) *soap.SoapMessage {
	message := soap.NewMessage()
	message.Header().
		To(url).
		ReplyTo(anonymous).
		MaxEnvelopeSize(params.EnvelopeSize).
		Id(messageID).
		Locale(params.Locale).
		Timeout(params.Timeout).
		Action(actionCommand).
		ResourceURI(resourceCmd).
		ShellId(shellID).
		AddOption(soap.NewHeaderOption("WINRS_CONSOLEMODE_STDIN", "FALSE")).
		AddOption(soap.NewHeaderOption("WINRS_SKIP_CMD_SHELL", "FALSE")).
		Build()
	body := message.CreateBodyElement("CommandLine", soap.DOM_NS_WIN_SHELL)
	// CDATA keeps & and < of a command line out of the XML's way; a "]]>"
	// inside is split across two sections.
	cdata := "<![CDATA[" + strings.ReplaceAll(commandLine, "]]>", "]]]]><![CDATA[>") + "]]>"
	message.CreateElement(body, "Command", soap.DOM_NS_WIN_SHELL).SetContent(cdata)
	return message
}

// newMessageID is a WS-Addressing message id: a random UUID.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("uuid:%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
