"""MIT Kerberos (through python-gssapi) as the peer of the Go package.

Run as `gssapi_peer.py initiate SPN MECH` (with KRB5CCNAME) or
`gssapi_peer.py accept` (with KRB5_KTNAME); MECH is krb5 or spnego.
Context tokens and messages travel as base64 lines:

  initiate: prints the first token, reads the answer.
  accept:   reads the first token, prints the answer and the client.
  then, per line read:
    wrap B64MSG             -> prints B64HEADER B64DATA (data and padding,
                               as WinRM carries them)
    unwrap B64HDR B64DATA N -> prints B64MSG; N is the message's length,
                               what follows it in DATA is padding
    unwrap1 B64HDR B64DATA  -> the same through gss_unwrap on the whole
                               token, as pyspnego opens WinRM messages
    flags                   -> prints the established context's flags
"""
import base64
import sys

import gssapi
import gssapi.raw as raw
from gssapi.raw import ext_dce as dce

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
B = dce.IOVBufferType


def out(*fields):
    print(" ".join(fields), flush=True)


def b64(b):
    return base64.b64encode(b or b"").decode()


def read():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return line.split()


def main():
    role = sys.argv[1]
    if role == "initiate":
        spn, mech = sys.argv[2], sys.argv[3]
        name = gssapi.Name(spn, gssapi.NameType.kerberos_principal)
        flags = (gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.out_of_sequence_detection |
                 gssapi.RequirementFlag.confidentiality | gssapi.RequirementFlag.integrity)
        ctx = gssapi.SecurityContext(name=name, usage="initiate", flags=flags,
                                     mech=SPNEGO if mech == "spnego" else gssapi.MechType.kerberos)
        out(b64(ctx.step()))
        ctx.step(base64.b64decode(read()[0]))
        if not ctx.complete:
            raise SystemExit("context not complete after the answer")
    else:
        ctx = gssapi.SecurityContext(usage="accept")
        answer = ctx.step(base64.b64decode(read()[0]))
        if not ctx.complete:
            raise SystemExit("context not complete after the first token")
        out(b64(answer), str(ctx.initiator_name))
    while True:
        cmd = read()
        if cmd[0] == "wrap":
            iov = dce.IOV(B.header, base64.b64decode(cmd[1]), B.padding, std_layout=False)
            dce.wrap_iov(ctx, iov, confidential=True)
            out(b64(iov[0].value), b64(iov[1].value + (iov[2].value or b"")))
        elif cmd[0] == "unwrap":
            data, n = base64.b64decode(cmd[2]), int(cmd[3])
            bufs = [(B.header, False, base64.b64decode(cmd[1])), data[:n]]
            if len(data) > n:
                bufs.append((B.padding, False, data[n:]))
            iov = dce.IOV(*bufs, std_layout=False)
            res = dce.unwrap_iov(ctx, iov)
            if not res:
                raise SystemExit("unwrapped a message that was not sealed")
            out(b64(iov[1].value))
        elif cmd[0] == "unwrap1":
            res = raw.unwrap(ctx, base64.b64decode(cmd[1]) + base64.b64decode(cmd[2]))
            if not res.encrypted:
                raise SystemExit("unwrapped a message that was not sealed")
            out(b64(res.message))
        elif cmd[0] == "flags":
            out(str(int(ctx.actual_flags)))


if __name__ == "__main__":
    main()
