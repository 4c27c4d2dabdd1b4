#!/usr/bin/python3
"""Drives a gsd sandbox WinRM endpoint with Debian's pywinrm (python3-winrm).

Run with the system interpreter (/usr/bin/python3), which is the one
python3-winrm is installed for. Each case prints one JSON object per line:
{"case": name, "ok": bool, "detail": str}. The Go conformance test runs this
script and checks every line, so pywinrm is an independent second client
beside masterzen/winrm.
"""

import argparse
import base64
import hashlib
import json
import sys
import traceback
import uuid

import xmltodict
from winrm.exceptions import InvalidCredentialsError, WinRMError, WinRMTransportError
from winrm.protocol import Protocol

SHELL_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"


def protocol(args, password=None, operation_timeout=20, user=None):
    extra = {}
    if args.auth == "kerberos":
        # Hosts are reached by address; the SPN's host part is given, as
        # in a domain reached through an alias.
        extra["kerberos_hostname_override"] = args.hostname_override or None
    return Protocol(
        endpoint=args.endpoint,
        transport=args.auth,
        username=args.user if user is None else user,
        password=args.password if password is None else password,
        server_cert_validation="validate",
        ca_trust_path=args.ca or None,
        # 'always' seals every message with the NTLM or Kerberos session
        # key, as a stock Windows Server requires over HTTP; 'never' sends clear
        # SOAP, which only a host with AllowUnencrypted accepts.
        message_encryption=args.encryption,
        operation_timeout_sec=operation_timeout,
        read_timeout_sec=operation_timeout + 10,
        **extra
    )


def send_input(p, shell_id, command_id, data, end=False):
    """pywinrm 0.3.0 has no Send helper; this builds the request with its
    own header code and sends it through its own transport."""
    req = {"env:Envelope": p._get_soap_header(resource_uri=SHELL_CMD, action=SEND, shell_id=shell_id)}
    stream = req["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Send", {}).setdefault("rsp:Stream", {})
    stream["@Name"] = "stdin"
    stream["@CommandId"] = command_id
    stream["#text"] = base64.b64encode(data).decode("ascii")
    if end:
        stream["@End"] = "true"
    p.send_message(xmltodict.unparse(req))


def run(p, command, arguments=(), skip_cmd_shell=False):
    shell = p.open_shell(codepage=65001)
    try:
        cid = p.run_command(shell, command, arguments, skip_cmd_shell=skip_cmd_shell)
        out, err, code = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
        return out, err, code
    finally:
        p.close_shell(shell)


def check(cond, detail):
    if not cond:
        raise AssertionError(detail)


def expect_401(p, otherwise):
    """Opening a shell must be refused with HTTP 401, as Windows refuses."""
    try:
        p.open_shell()
    except InvalidCredentialsError:
        return
    except WinRMTransportError as e:
        check(e.code == 401, "status %r" % e.code)
        return
    raise AssertionError(otherwise)


def case_arguments(args):
    out, err, code = run(protocol(args), "cmd", ["/c", "echo", "alpha", '"beta gamma"'])
    check(code == 0, "exit code %r" % code)
    check(out == b'alpha "beta gamma"\r\n', "stdout %r" % out)
    out, _, code = run(protocol(args), 'C:\\windows\\system32\\cmd.exe /c echo skip&& exit 4', skip_cmd_shell=True)
    check(code == 4 and out.strip() == b"skip", "skip_cmd_shell: %r %r" % (out, code))


def case_lines_3000(args):
    out, err, code = run(protocol(args), "for /L %i in (1,1,3000) do @echo line %i")
    check(code == 0, "exit code %r" % code)
    lines = out.decode("ascii").splitlines()
    check(len(lines) == 3000, "got %d lines" % len(lines))
    check(lines[0] == "line 1" and lines[-1] == "line 3000", "first %r, last %r" % (lines[0], lines[-1]))
    check(err == b"", "stderr %r" % err)


def case_refused_unencrypted(args):
    """A stock host (AllowUnencrypted=false) refuses clear SOAP over HTTP
    with 401 even for the right password, as Windows does."""
    expect_401(protocol(args), "an unencrypted message was served")


def case_exit_codes(args):
    for want in (0, 1, 7, 255):
        _, _, code = run(protocol(args), "exit %d" % want)
        check(code == want, "exit %d gave %r" % (want, code))


def case_streams(args):
    out, err, code = run(protocol(args), "echo to-out& echo to-err 1>&2& exit 2")
    check(out.strip() == b"to-out", "stdout %r" % out)
    check(err.strip() == b"to-err", "stderr %r" % err)
    check(code == 2, "exit code %r" % code)


def case_stdin(args):
    p = protocol(args)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "more")
        send_input(p, shell, cid, b"first line\r\n")
        send_input(p, shell, cid, b"second ")
        send_input(p, shell, cid, b"line\r\n")
        send_input(p, shell, cid, b"third line\r\n", end=True)
        out, _, code = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    check(lines == [b"first line", b"second line", b"third line"], "stdout %r" % out)
    check(code == 0, "exit code %r" % code)


def case_big_output(args):
    out, _, code = run(protocol(args), "type C:\\gsd-big.txt")
    check(code == 0, "exit code %r" % code)
    check(len(out) == args.big_size, "got %d bytes, want %d" % (len(out), args.big_size))
    check(hashlib.sha256(out).hexdigest() == args.big_sha256, "sha256 differs")


def case_operation_timeout(args):
    out, _, code = run(protocol(args, operation_timeout=1), "ping -n 4 127.0.0.1 >nul & echo outlived")
    check(out.strip() == b"outlived", "stdout %r" % out)
    check(code == 0, "exit code %r" % code)


def case_signal(args):
    p = protocol(args)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "ping -n 120 127.0.0.1")
        p.cleanup_command(shell, cid)  # Signal terminate
        try:
            p._raw_get_command_output(shell, cid)
        except WinRMError as e:
            check("CommandId" in str(e), "unexpected fault after terminate: %s" % e)
        else:
            raise AssertionError("the command was still there after Signal terminate")
    finally:
        p.close_shell(shell)


def case_wrong_password(args):
    expect_401(protocol(args, password="not-the-password"), "a wrong password was accepted")


def case_domain_user(args):
    # Windows accepts a local account as .\user or MACHINE\user too.
    p = protocol(args, user=".\\" + args.user)
    p.close_shell(p.open_shell())


def case_envelope_limit(args):
    p = protocol(args)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "more")
        try:
            send_input(p, shell, cid, b"x" * (args.max_envelope + 1024), end=True)
        except WinRMError as e:
            check("w:EncodingLimit" in str(e) and "MaxEnvelopeSize" in str(e), "fault %s" % e)
        else:
            raise AssertionError("an envelope over MaxEnvelopeSize was accepted")
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def case_unicode(args):
    out, _, code = run(protocol(args), 'type "C:\\%s"' % args.unicode_name)
    check(code == 0, "exit code %r" % code)
    check(out.decode("utf-8") == args.unicode_text, "stdout %r" % out)


def case_shell_not_found(args):
    p = protocol(args)
    try:
        p.run_command(str(uuid.uuid4()).upper(), "exit 0")
    except WinRMError as e:
        check("w:InvalidSelectors" in str(e), "fault %s" % e)
        return
    raise AssertionError("a command in an unknown shell was accepted")


CASES = [
    case_arguments,
    case_lines_3000,
    case_exit_codes,
    case_streams,
    case_stdin,
    case_big_output,
    case_operation_timeout,
    case_signal,
    case_wrong_password,
    case_domain_user,
    case_envelope_limit,
    case_unicode,
    case_shell_not_found,
]

def case_refused(args):
    """The host refuses this way in (NTLM on a host that denies it) with
    HTTP 401. requests-ntlm, finding no challenge in the 401 to its
    NEGOTIATE, stops with StopIteration before pywinrm sees the status."""
    try:
        expect_401(protocol(args), "the host let this client in")
    except StopIteration:
        pass


# Run only when asked for with --only: they expect a refusal.
EXTRA = [case_refused_unencrypted, case_refused]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--auth", choices=["basic", "ntlm", "kerberos"], required=True)
    ap.add_argument("--hostname-override", default="")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ca", default="")
    ap.add_argument("--big-size", type=int, required=True)
    ap.add_argument("--big-sha256", required=True)
    ap.add_argument("--unicode-name", required=True)
    ap.add_argument("--unicode-text", required=True)
    ap.add_argument("--max-envelope", type=int, required=True)
    ap.add_argument("--encryption", choices=["always", "never", "auto"], default="never")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    for case in CASES + EXTRA:
        if case in EXTRA and not args.only:
            continue
        name = case.__name__[len("case_"):]
        if args.only and name not in args.only.split(","):
            continue
        try:
            case(args)
            print(json.dumps({"case": name, "ok": True, "detail": ""}), flush=True)
        except Exception as e:  # report every case, whatever failed
            detail = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=3))
            print(json.dumps({"case": name, "ok": False, "detail": detail}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
