"""The front door: one HTTP endpoint for every service.

request -> SigV4 (service from the credential scope) -> model-driven parse -> handler ->
model-driven serialize. Every failure leaves as the protocol's own error envelope.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from botocore.model import OperationModel, ServiceModel

from gureum.api import document_protocol, sigv4
from gureum.api import exceptions as api_exc
from gureum.api import tls as api_tls
from gureum.api.dispatch import (
    CURRENT_ACTION,
    HANDLERS,
    SERVICES,
    RequestContext,
    load_handlers,
)
from gureum.api.document_protocol import DocumentParser, DocumentSerializer
from gureum.api.models import service_model
from gureum.api.query_parser import QueryParser
from gureum.api.ratelimit import RateLimiter
from gureum.api.xml_serializer import XmlSerializer
from gureum.console import Console
from gureum.console.http import Request as ConsoleRequest
from gureum.errors import ApiError, ConfigError
from gureum.hosts import http as host_http

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.api")
MAX_BODY = 1024 * 1024
DRAIN_LIMIT = 16 * MAX_BODY
MAX_PARAMS = 5000
HANDSHAKE_TIMEOUT = 10  # seconds a TLS client may take to say hello and finish
LINGER_SECONDS, LINGER_BYTES = 2, 1024 * 1024  # a plain-HTTP client's request, read and dropped
TLS_HANDSHAKE_RECORD = 0x16  # the first byte of every TLS connection (a ClientHello record)
PLAIN_TO_TLS = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                b"Connection: close\r\nContent-Length: 52\r\n\r\n"
                b"This endpoint speaks HTTPS only: use https:// here.\n")


CBOR = "smithy-rpc-v2-cbor"
WIRE_PROTOCOLS = ("ec2", "query", "json", CBOR)


class Protocol:
    """One service spoken in one wire protocol, from its botocore model: `ec2` and `query`
    (form parameters, XML), `json` (X-Amz-Target, JSON), `smithy-rpc-v2-cbor` (CBOR)."""

    def __init__(self, model: ServiceModel, kind: str) -> None:
        self.model = model
        self.kind = kind
        self.target_prefix = model.metadata.get("targetPrefix", "")
        self.document = kind in ("json", CBOR)
        if self.document:
            self.document_parser = DocumentParser(cbor=kind == CBOR)
            self.serializer: XmlSerializer | DocumentSerializer = DocumentSerializer(
                cbor=kind == CBOR)
        else:
            self.query_parser = QueryParser(kind)
            self.serializer = XmlSerializer(kind, model.metadata.get("xmlNamespace", "").rstrip("/"))
        version = model.metadata.get("jsonVersion", "1.1")
        self.headers = {"ec2": {"Content-Type": "text/xml;charset=UTF-8"},
                        "query": {"Content-Type": "text/xml;charset=UTF-8"},
                        "json": {"Content-Type": f"application/x-amz-json-{version}"},
                        CBOR: {"Content-Type": "application/cbor",
                               "smithy-protocol": "rpc-v2-cbor"}}[kind]

    def read(self, headers: dict[str, str], path: str, query: str,
             body: bytes) -> tuple[str | None, dict[str, str] | bytes]:
        """(action, raw input) of a request."""
        if self.kind == CBOR:
            return document_protocol.cbor_action(path, self.target_prefix), body
        if self.kind == "json":
            return document_protocol.json_action(headers, self.target_prefix), body
        params = _form(query, body)
        return params.get("Action"), params

    def parse(self, operation: OperationModel, raw: dict[str, str] | bytes) -> dict[str, Any]:
        if self.document:
            assert isinstance(raw, bytes)
            return self.document_parser.parse(operation, raw)
        assert isinstance(raw, dict)
        return self.query_parser.parse(operation, raw)


class ServiceProtocols:
    """Every wire protocol a service's model lists (CloudWatch: CBOR, JSON and query):
    each request is read, and answered, in the one it was sent in."""

    def __init__(self, service: str) -> None:
        model = service_model(service)
        kinds = model.metadata.get("protocols") or [model.protocol]
        self.by_kind = {k: Protocol(model, k) for k in kinds if k in WIRE_PROTOCOLS}
        self.default = next(iter(self.by_kind.values()))

    def pick(self, headers: dict[str, str]) -> Protocol:
        if headers.get("smithy-protocol") == "rpc-v2-cbor" and CBOR in self.by_kind:
            return self.by_kind[CBOR]
        if "x-amz-target" in headers and "json" in self.by_kind:
            return self.by_kind["json"]
        return self.by_kind.get("query") or self.by_kind.get("ec2") or self.default


class Api:
    def __init__(self, cloud: Cloud) -> None:
        load_handlers()
        self.cloud = cloud
        self.protocols = {name: ServiceProtocols(model) for name, model in SERVICES.items()}
        self.limiter = RateLimiter(cloud.config.rate_limit, cloud.config.rate_burst)

    def _protocol_for(self, headers: dict[str, str]) -> Protocol:
        """The protocol a request is read and answered in: the signed-for service's (in
        the wire protocol the request uses), else EC2's."""
        try:
            service = self.protocols.get(sigv4.credential_of(headers).service,
                                         self.protocols["ec2"])
        except ApiError:
            service = self.protocols["ec2"]
        return service.pick(headers)

    def error(self, err: ApiError, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """An error answered before the request could be read (an oversized body)."""
        protocol = self._protocol_for(headers)
        return (err.status, protocol.serializer.error(err.code, err.message, str(uuid.uuid4())),
                protocol.headers)

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[int, bytes, dict[str, str]]:
        protocol = self._protocol_for(headers)
        status, payload = self._handle(protocol, method, target, headers, body)
        return status, payload, protocol.headers

    def _handle(self, protocol: Protocol, method: str, target: str, headers: dict[str, str],
                body: bytes) -> tuple[int, bytes]:
        request_id = str(uuid.uuid4())
        try:
            split = urlsplit(target)
            credential = sigv4.verify(method, split.path, split.query, headers, body,
                                      self.cloud.secret_for)
            if credential.service not in self.protocols:
                raise api_exc.InvalidAction(f"Service '{credential.service}' is not offered here")
            body = _decoded(headers, body)  # signed as sent: decompress after verifying
            action, raw = protocol.read(headers, split.path, split.query, body)
            return 200, self._dispatch(protocol, credential, action, raw, request_id)
        except ApiError as err:
            return err.status, protocol.serializer.error(err.code, err.message, request_id)
        except Exception:  # a bug of ours: answer in AWS's shape, keep the traceback in the log
            log.exception("request %s failed", request_id)
            return 500, protocol.serializer.error(
                "InternalError", "An internal error has occurred", request_id)

    def _dispatch(self, protocol: Protocol, credential: sigv4.Credential, action: str | None,
                  raw: dict[str, str] | bytes, request_id: str) -> bytes:
        if not action:
            raise api_exc.MissingAction("The request must contain the parameter Action")
        account_id = self.cloud.account_for(credential.access_key_id)
        result = self.call(protocol, credential.service, action, raw, account_id,
                           credential.region, request_id)
        return protocol.serializer.response(protocol.model.operation_model(action), result,
                                            request_id)

    def call(self, protocol: Protocol, service: str, action: str, raw: dict[str, str] | bytes,
             account_id: str, region: str, request_id: str) -> dict[str, Any]:
        """One action as `account_id`: the model's parse (and its validation), DryRun, the
        account's rate limit, the handler. The web console calls actions through here too,
        so its validation and errors are the API's own."""
        if action not in protocol.model.operation_names:
            raise api_exc.InvalidAction(f"The action {action[:128]} is not valid for this web service.")
        handler = HANDLERS.get((service, action))
        if handler is None:
            raise api_exc.NotImplementedAction(
                f"The action {action} is not implemented by gureum yet (see docs/COVERAGE.md).")
        parsed = protocol.parse(protocol.model.operation_model(action), raw)
        if parsed.get("DryRun"):
            raise api_exc.DryRunOperation("Request would have succeeded, but DryRun flag is set.")
        self.limiter.take(account_id)
        ctx = RequestContext(self.cloud, account_id, request_id, region)
        current = CURRENT_ACTION.set((SERVICES[service], action))
        try:
            return handler(ctx, parsed)
        finally:
            CURRENT_ACTION.reset(current)


def _decoded(headers: dict[str, str], body: bytes) -> bytes:
    """The body as the client meant it: botocore gzips large bodies of operations whose
    model asks for request compression (CloudWatch's PutMetricData above 10 KB)."""
    encodings = [e.strip() for e in headers.get("content-encoding", "").split(",") if e.strip()]
    if not encodings:
        return body
    if encodings != ["gzip"]:
        raise api_exc.InvalidParameterValue(
            f"Content-Encoding {headers['content-encoding'][:64]} is not supported: gzip only")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, MAX_BODY + 1)
    except zlib.error:
        raise api_exc.InvalidParameterValue("The request body is not valid gzip") from None
    if len(plain) > MAX_BODY or inflater.unconsumed_tail:
        raise api_exc.RequestEntityTooLarge(f"Request body exceeds {MAX_BODY} bytes uncompressed")
    return plain


def _form(query: str, body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise api_exc.InvalidParameterValue("The request body is not valid UTF-8") from None
    pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(text, keep_blank_values=True)
    if len(pairs) > MAX_PARAMS:
        raise api_exc.InvalidParameterValue(f"A request may carry at most {MAX_PARAMS} parameters")
    return dict(pairs)


class _Handler(BaseHTTPRequestHandler):
    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without NODELAY, Nagle and the
        # client's delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    protocol_version = "HTTP/1.1"
    api: Api
    console: Console
    server: ApiServer
    server_version = "gureum"
    timeout = 60  # a slow or stalled client cannot hold a thread forever

    def _serve(self) -> None:
        if self.command == "GET" and self.path in ("/ping", "/healthz"):
            self._reply(200, b'{"status": "ok"}', "application/json")
            return
        if self.command == "GET" and self.path == "/identity-certificate.pem":
            # Public: what verifies instance identity documents' signatures.
            self._reply(200, self.api.cloud.identity.certificate_pem, "application/x-pem-file")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self.close_connection = True
            self._discard(size)
            self._reply(*self.api.error(
                api_exc.RequestEntityTooLarge(f"Request body exceeds {MAX_BODY} bytes"), headers))
            return
        body = self.rfile.read(size) if size else b""
        if len(body) < size:  # truncated body: the client went away
            self.close_connection = True
            return
        if self.path.startswith(host_http.PREFIX):  # hosts joining and heartbeating
            self._reply(*host_http.handle(self.api.cloud, self.command, self.path, body,
                                          self.client_address[0]))
            return
        if self.path == "/console" or self.path.startswith(("/console/", "/console?")):
            self._reply_console(headers, body, secure=self.server.tls is not None)
            return
        started = time.perf_counter()
        status, payload, reply_headers = self.api.handle(self.command, self.path, headers, body)
        # What the server spent (checking, parsing, handler, serializing): a client can
        # tell its own share of a round trip from ours (bench/api.py reports both).
        self._reply(status, payload, {
            **reply_headers, "Server-Timing": f"app;dur={(time.perf_counter() - started) * 1000:.2f}"})

    def _reply_console(self, headers: dict[str, str], body: bytes, secure: bool) -> None:
        """The web console (gureum/console): its own sign-in instead of SigV4."""
        answer = self.console.handle(ConsoleRequest(self.command, self.path, headers, body,
                                                    secure=secure))
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _discard(self, size: int) -> None:
        """Read (and drop) a moderately oversized body before answering, so the client is
        not cut off mid-send and sees the error; beyond DRAIN_LIMIT it is cut off."""
        left = size if 0 < size <= DRAIN_LIMIT else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                return
            left -= len(chunk)

    do_POST = _serve
    do_GET = _serve

    def _reply(self, status: int, payload: bytes,
               headers: dict[str, str] | str = "text/xml;charset=UTF-8") -> None:
        self.send_response(status)
        for name, value in ({"Content-Type": headers} if isinstance(headers, str)
                            else headers).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)


def _linger(sock: socket.socket) -> None:
    """Close after the client is done sending (reading and dropping up to LINGER_BYTES
    for up to LINGER_SECONDS): closing with its request unread would reset the
    connection, and the client could lose the answer or see a broken pipe mid-send."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(LINGER_SECONDS)
    left = LINGER_BYTES
    while left > 0:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            return
        left -= len(chunk)


class ApiServer(ThreadingHTTPServer):
    """With `tls`, every connection is HTTPS: the handshake runs in the connection's own
    thread (a slow client never holds up accepting), and a connection that does not open
    with a TLS record is told to use https and closed, answered nothing else."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    console: Console
    tls: ssl.SSLContext | None = None

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.tls = tls
        super().__init__(address, handler)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            first = request.recv(1, socket.MSG_PEEK)
            if not first:
                return
            if first[0] != TLS_HANDSHAKE_RECORD:
                request.sendall(PLAIN_TO_TLS)  # no API answer, only where to go
                _linger(request)
                return
            secured = self.tls.wrap_socket(request, server_side=True)  # detaches `request`
        except (OSError, ssl.SSLError) as err:  # scanners, wrong CA on the client, resets
            log.debug("TLS handshake with %s failed: %s", client_address, err)
            return
        api_tls.serve_secured(secured, lambda conn: super(ApiServer, self).finish_request(
            conn, client_address))  # type: ignore[arg-type]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], api_tls.ROUTINE_DISCONNECTS):
            log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


def serve(cloud: Cloud, host: str, port: int, tls: ssl.SSLContext | None = None) -> ApiServer:
    """The API and console on host:port; HTTPS with `tls`, which any listener beyond
    loopback must have (api/tls.py makes it)."""
    from gureum.config import is_loopback

    if tls is None and not is_loopback(host):
        raise ConfigError(f"refusing to serve the API in clear text on {host} (not loopback)")
    api = Api(cloud)
    console = Console(api)
    handler = type("Handler", (_Handler,), {"api": api, "console": console})
    server = ApiServer((host, port), handler, tls)
    server.console = console
    threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
    return server
