"""The pykerberos API that requests-kerberos 0.12 calls, on python3-gssapi.

Test-only. Debian's python3-kerberos (pykerberos 1.1.14) lacks the WinRM
message encryption entry points (authGSSWinRMEncryptMessage and
authGSSWinRMDecryptMessage, added in pykerberos 1.2), so pywinrm refuses
message_encryption='always' with it. The conformance test puts this
folder ahead of dist-packages on PYTHONPATH; requests-kerberos and
pywinrm stay Debian's, and the Kerberos underneath is MIT's GSSAPI, as
with pykerberos.
"""

import base64

import gssapi
import gssapi.raw as gss
from gssapi.raw import IOV, IOVBufferType

AUTH_GSS_CONTINUE = 0
AUTH_GSS_COMPLETE = 1

GSS_C_DELEG_FLAG = 1
GSS_C_MUTUAL_FLAG = 2
GSS_C_REPLAY_FLAG = 4
GSS_C_SEQUENCE_FLAG = 8
GSS_C_CONF_FLAG = 16
GSS_C_INTEG_FLAG = 32
GSS_C_ANON_FLAG = 64
GSS_C_PROT_READY_FLAG = 128
GSS_C_TRANS_FLAG = 256

GSS_C_AF_UNSPEC = 0


class KrbError(Exception):
    pass


class GSSError(KrbError):
    pass


class _Client:
    def __init__(self, service, principal, flags):
        # "HTTP@host" is a host-based service name; "HTTP/host@REALM" a
        # Kerberos principal, as pykerberos reads them.
        if "/" in service:
            self.target = gssapi.Name(service, gssapi.NameType.kerberos_principal)
        else:
            self.target = gssapi.Name(service, gssapi.NameType.hostbased_service)
        self.creds = None
        if principal:
            self.creds = gssapi.Credentials(
                name=gssapi.Name(principal, gssapi.NameType.kerberos_principal), usage="initiate")
        # WinRM seals messages: confidentiality and integrity are asked
        # for, as MIT grants them anyway.
        self.flags = flags | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG
        self.ctx = None
        self.response = None


def _gss_error(e):
    return GSSError((str(e), getattr(e, "maj_code", 0)), (str(e), getattr(e, "min_code", 0)))


def authGSSClientInit(service, principal=None, gssflags=GSS_C_MUTUAL_FLAG | GSS_C_SEQUENCE_FLAG, **_):
    try:
        return AUTH_GSS_COMPLETE, _Client(service, principal, gssflags)
    except gss.GSSError as e:
        raise _gss_error(e)


def channelBindings(initiator_addrtype=GSS_C_AF_UNSPEC, initiator_address=None,
                    acceptor_addrtype=GSS_C_AF_UNSPEC, acceptor_address=None, application_data=None):
    # python-gssapi writes GSS_C_AF_UNSPEC for an address type of None.
    return gss.ChannelBindings(
        initiator_address_type=initiator_addrtype or None, initiator_address=initiator_address,
        acceptor_address_type=acceptor_addrtype or None, acceptor_address=acceptor_address,
        application_data=application_data)


def authGSSClientStep(state, challenge, channel_bindings=None, **_):
    token = base64.b64decode(challenge) if challenge else None
    try:
        if state.ctx is None:
            state.ctx = gssapi.SecurityContext(
                name=state.target, creds=state.creds, usage="initiate",
                flags=[f for f in gssapi.RequirementFlag if state.flags & f], channel_bindings=channel_bindings)
        out = state.ctx.step(token)
    except gss.GSSError as e:
        raise _gss_error(e)
    state.response = base64.b64encode(out).decode("ascii") if out else None
    return AUTH_GSS_COMPLETE if state.ctx.complete else AUTH_GSS_CONTINUE


def authGSSClientResponse(state):
    return state.response


def authGSSClientUserName(state):
    return str(state.ctx.initiator_name) if state.ctx else None


def authGSSClientClean(state):
    state.ctx = None
    return AUTH_GSS_COMPLETE


def authGSSWinRMEncryptMessage(state, message):
    """Seals message with a wrap token in WinRM's layout: the header (the
    token header, its trailer folded in) apart, then the sealed data and
    any padding. Returns (data, header), as pykerberos does."""
    iov = IOV(IOVBufferType.header, message, IOVBufferType.padding, std_layout=False)
    try:
        gss.wrap_iov(state.ctx, iov, confidential=True)
    except gss.GSSError as e:
        raise _gss_error(e)
    return iov[1].value + (iov[2].value or b""), iov[0].value


def authGSSWinRMDecryptMessage(state, message, header):
    """Opens a sealed message: header and data together are one wrap
    token (RFC 4121 with its rotation, or RFC 4757 whose length field
    covers any padding after the data), so gss_unwrap reads it whole and
    drops the padding, as pyspnego does for Kerberos."""
    try:
        return gss.unwrap(state.ctx, header + message).message
    except gss.GSSError as e:
        raise _gss_error(e)
