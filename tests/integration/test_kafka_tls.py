"""A real TLS connection from both Kafka client families, configured by the one settings model.

Tansu speaks plaintext only, so a TLS-terminating proxy (asyncio + ``ssl``, a throw-away CA
from ``tests.tls``) sits in front of a broker of this test's own that *advertises the
proxy's address*: after the bootstrap, clients reconnect to what the metadata names, and
that must be the TLS port too. Clients verify the certificate and the host name against
``KAFKA_SSL_CA_LOCATION``. The proxy counts completed handshakes, and a client without the
CA is refused, so the traffic cannot have bypassed TLS.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from paystream.runtime.broker import EmbeddedBroker, free_port
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from schemas.topics import TopicSpec
from tests.tls import Certificates, make_certificates

pytestmark = pytest.mark.broker

HOST = "localhost"  # the name in the server certificate, checked by every client


@dataclass
class TlsProxy:
    """Accepts TLS on ``port`` and pipes the plaintext to ``target_port`` (one thread)."""

    port: int
    target_port: int
    context: ssl.SSLContext
    handshakes: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1  # the handler runs only after the TLS handshake completed
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    def start(self) -> None:
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._client, HOST, self.port, ssl=self.context)
            )
            started.set()
            self._loop.run_forever()
            server.close()

        self._thread = threading.Thread(target=run, name="tls-proxy", daemon=True)
        self._thread.start()
        assert started.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"), HOST)


@pytest.fixture(scope="module")
def tls_proxy(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsProxy]:
    proxy_port = free_port()
    broker = EmbeddedBroker(
        log_path=tmp_path_factory.mktemp("tls-broker") / "tansu.log",
        advertised=f"{HOST}:{proxy_port}",
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    proxy = TlsProxy(proxy_port, broker.port, context)
    with broker:
        proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()


def tls_settings(proxy: TlsProxy, ca: Path) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap_servers=f"{HOST}:{proxy.port}",
        kafka_security_protocol="SSL",
        kafka_ssl_ca_location=str(ca),
        paystream_broker_profile="embedded",
        paystream_topic_prefix=f"tls{uuid.uuid4().hex[:8]}.",
    )


def test_confluent_kafka_produces_and_consumes_over_tls(
    tls_proxy: TlsProxy, certificates: Certificates
) -> None:
    settings = tls_settings(tls_proxy, certificates.ca)
    topic = settings.topic_prefix + "tls"
    before = tls_proxy.handshakes
    ensure_topics(settings.admin_config(), [TopicSpec(topic, 1)])
    producer = Producer(settings.producer_config())
    producer.produce(topic, b"over tls", b"k1")
    assert producer.flush(15) == 0
    consumer = Consumer(settings.consumer_config(f"tls-{uuid.uuid4().hex[:6]}"))
    consumer.subscribe([topic])
    try:
        value = None
        deadline = time.monotonic() + 30
        while value is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                value = message.value()
    finally:
        consumer.close()
    assert value == b"over tls"
    assert tls_proxy.handshakes > before


def test_aiokafka_with_fausts_credentials_produces_and_consumes_over_tls(
    tls_proxy: TlsProxy, certificates: Certificates
) -> None:
    settings = tls_settings(tls_proxy, certificates.ca)
    topic = settings.topic_prefix + "tls"
    ensure_topics(settings.admin_config(), [TopicSpec(topic, 1)])
    # exactly what Faust hands aiokafka for the worker's broker_credentials
    auth = dict(credentials_to_aiokafka_auth(settings.faust_credentials()))
    assert auth["security_protocol"] == "SSL"
    before = tls_proxy.handshakes

    async def round_trip() -> bytes | None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, **auth)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"aiokafka over tls", key=b"k1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
            **auth,
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        return message.value

    assert asyncio.run(round_trip()) == b"aiokafka over tls"
    assert tls_proxy.handshakes > before


def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_proxy: TlsProxy, tmp_path: Path
) -> None:
    stranger = make_certificates(tmp_path / "other", HOST)  # a different CA
    settings = tls_settings(tls_proxy, stranger.ca)
    admin = AdminClient(settings.admin_config(log_level=0))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
