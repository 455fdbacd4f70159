// Pins the peer link's security and data path with a real CA, real host certificates and
// real sockets: a chunk is fetched and verified (from memory and from a file region, several on
// one link); forged, foreign-requester and expired tickets are refused; a server that is not
// the expected host, a client without a certificate or from another CA are refused; corrupt
// data is caught by the client; a changed source file is not served; the upload cap answers
// busy.
use super::tls::{client_config, peer_name, server_config};
use super::*;
use crate::files::testutil::bytes;
use crate::files::ticket::{self, Ticket};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use ring::signature::Ed25519KeyPair;
use std::collections::HashMap;

const SERVER: i64 = 1;
const CLIENT: i64 = 2;
const OTHER: i64 = 3;
const STEP: i64 = 70;

struct Ca {
    pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca cert");
        Ca {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    /// `(cert_pem, key_pem)` for a host's peer identity.
    fn host(&self, id: i64) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![peer_name(id)]).expect("params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn server_tls(&self, id: i64) -> Arc<rustls::ServerConfig> {
        let (cert, key) = self.host(id);
        server_config(self.pem.as_bytes(), cert.as_bytes(), key.as_bytes()).expect("server tls")
    }

    fn client(&self, id: i64) -> PeerClient {
        let (cert, key) = self.host(id);
        PeerClient::new(
            client_config(self.pem.as_bytes(), cert.as_bytes(), key.as_bytes())
                .expect("client tls"),
        )
    }
}

/// Serves what it holds to tickets of [`STEP`].
struct Source(HashMap<Hash, Chunk>);

impl ChunkSource for Source {
    fn lookup(&self, ticket: &Ticket, _peer_host: i64, hash: &Hash) -> Option<Chunk> {
        (ticket.step_id == STEP).then(|| self.0.get(hash).cloned())?
    }
}

struct Fixture {
    ca: Ca,
    key: Ed25519KeyPair,
    addr: SocketAddr,
    mem: (Hash, Vec<u8>),
    file: (Hash, Vec<u8>),
    file_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(max_uploads: usize, upload: RateLimiter) -> Fixture {
        let ca = Ca::new();
        let key =
            ticket::key_pair_from_pkcs8(&ticket::generate_pkcs8().expect("gen")).expect("key");
        let dir = tempfile::tempdir().expect("tempdir");
        let mem = bytes(1_000_000, 1);
        let file_data = bytes(300_000, 2);
        let file_path = dir.path().join("source.bin");
        std::fs::write(&file_path, &file_data).expect("write");
        // The chunk is the file's second 100 KB.
        let region = file_data[100_000..200_000].to_vec();
        let mut chunks = HashMap::new();
        chunks.insert(hash_of(&mem), Chunk::Bytes(mem.clone()));
        chunks.insert(
            hash_of(&region),
            Chunk::File {
                path: file_path.clone(),
                offset: 100_000,
                size: 100_000,
            },
        );
        let opts = PeerServerOptions {
            ticket_key: ticket::public_key(&key),
            upload,
            max_uploads,
            max_connections: 16,
        };
        let server = PeerServer::bind(
            "127.0.0.1:0".parse().expect("addr"),
            ca.server_tls(SERVER),
            Arc::new(Source(chunks)),
            opts,
        )
        .await
        .expect("bind");
        let addr = server.local_addr().expect("addr");
        tokio::spawn(server.run(std::future::pending()));
        Fixture {
            ca,
            key,
            addr,
            mem: (hash_of(&mem), mem),
            file: (hash_of(&region), region),
            file_path,
            _dir: dir,
        }
    }

    fn ticket(&self, requester: i64) -> Ticket {
        Ticket::signed(
            STEP,
            1,
            requester,
            crate::exec::now_ms() + 60_000,
            &self.key,
        )
    }
}

fn unlimited() -> RateLimiter {
    RateLimiter::unlimited()
}

#[tokio::test]
async fn chunks_are_fetched_and_verified() {
    let fx = Fixture::start(4, unlimited()).await;
    let client = fx.ca.client(CLIENT);
    let ticket = fx.ticket(CLIENT);
    let got = client
        .get_chunk(
            fx.addr,
            SERVER,
            &ticket,
            &fx.mem.0,
            &RateLimiter::new(Some(50_000_000)),
        )
        .await
        .expect("memory chunk");
    assert_eq!(got, fx.mem.1);
    // Several requests on one link, a file region among them, and a miss in between.
    let mut link = client.connect(fx.addr, SERVER).await.expect("connect");
    assert_eq!(link.host_id(), SERVER);
    assert_eq!(
        link.get(&ticket, &fx.file.0, &unlimited())
            .await
            .expect("file chunk"),
        fx.file.1
    );
    let missing = hash_of(b"nobody has this");
    assert!(matches!(
        link.get(&ticket, &missing, &unlimited()).await,
        Err(PeerError::NotFound)
    ));
    assert_eq!(
        link.get(&ticket, &fx.mem.0, &unlimited())
            .await
            .expect("again"),
        fx.mem.1
    );
    // The source decides per step: another step's ticket finds nothing.
    let other_step = Ticket::signed(STEP + 1, 1, CLIENT, ticket.expires_at, &fx.key);
    assert!(matches!(
        link.get(&other_step, &fx.mem.0, &unlimited()).await,
        Err(PeerError::NotFound)
    ));
}

#[tokio::test]
async fn bad_tickets_are_refused() {
    let fx = Fixture::start(4, unlimited()).await;
    let client = fx.ca.client(CLIENT);
    let mut link = client.connect(fx.addr, SERVER).await.expect("connect");
    let forger = ticket::key_pair_from_pkcs8(&ticket::generate_pkcs8().expect("gen")).expect("key");
    let forged = Ticket::signed(STEP, 1, CLIENT, crate::exec::now_ms() + 60_000, &forger);
    let mut tampered = fx.ticket(CLIENT);
    tampered.expires_at += 1;
    let foreign = fx.ticket(OTHER);
    let expired = Ticket::signed(STEP, 1, CLIENT, crate::exec::now_ms() - 1, &fx.key);
    for (ticket, expect) in [
        (&forged, "signature"),
        (&tampered, "signature"),
        (&foreign, "host 3"),
        (&expired, "expired"),
    ] {
        match link.get(ticket, &fx.mem.0, &unlimited()).await {
            Err(PeerError::Refused(reason)) => assert!(reason.contains(expect), "{reason}"),
            other => panic!("expected a refusal mentioning {expect:?}, got {other:?}"),
        }
    }
    // The link is still good for a valid ticket.
    assert_eq!(
        link.get(&fx.ticket(CLIENT), &fx.mem.0, &unlimited())
            .await
            .expect("valid"),
        fx.mem.1
    );
}

#[tokio::test]
async fn identities_are_checked_both_ways() {
    let fx = Fixture::start(4, unlimited()).await;
    // The server at this address is host 1, not host 5.
    let err = fx
        .ca
        .client(CLIENT)
        .connect(fx.addr, 5)
        .await
        .err()
        .expect("wrong host");
    assert!(
        matches!(
            err,
            PeerError::WrongPeer {
                expected: 5,
                actual: None
            }
        ),
        "{err}"
    );
    // A client holding host 3's certificate cannot use host 2's ticket.
    let err = fx
        .ca
        .client(OTHER)
        .get_chunk(fx.addr, SERVER, &fx.ticket(CLIENT), &fx.mem.0, &unlimited())
        .await
        .expect_err("foreign requester");
    assert!(
        matches!(&err, PeerError::Refused(r) if r.contains("host 2") && r.contains("host 3")),
        "{err}"
    );
    // A certificate from another CA, or none at all, never gets a request through.
    let rogue = Ca::new().client(CLIENT);
    assert!(
        rogue
            .get_chunk(fx.addr, SERVER, &fx.ticket(CLIENT), &fx.mem.0, &unlimited())
            .await
            .is_err()
    );
    let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates({
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls_pemfile::certs(&mut fx.ca.pem.as_bytes())
            .next()
            .expect("pem")
            .expect("der");
        roots.add(der).expect("root");
        roots
    })
    .with_no_client_auth();
    let anonymous = PeerClient::new(Arc::new(anonymous));
    assert!(
        anonymous
            .get_chunk(fx.addr, SERVER, &fx.ticket(CLIENT), &fx.mem.0, &unlimited())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn corrupt_data_is_detected_by_the_client() {
    let ca = Ca::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_tls(SERVER));
    let data = bytes(200_000, 5);
    let hash = hash_of(&data);
    // A lying peer: answers every request with the data, one bit flipped.
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut stream = acceptor.accept(tcp).await.expect("tls");
        let _request = read_frame(&mut stream).await.expect("request");
        let mut bad = data;
        bad[1234] ^= 0x10;
        write_response(&mut stream, &Response::Ok(bad.len() as u32))
            .await
            .expect("header");
        stream.write_all(&bad).await.expect("body");
        stream.flush().await.expect("flush");
        let _ = read_frame(&mut stream).await;
    });
    let key = ticket::key_pair_from_pkcs8(&ticket::generate_pkcs8().expect("gen")).expect("key");
    let ticket = Ticket::signed(STEP, 1, CLIENT, i64::MAX, &key);
    let err = ca
        .client(CLIENT)
        .get_chunk(addr, SERVER, &ticket, &hash, &unlimited())
        .await
        .expect_err("corrupt");
    assert!(
        matches!(err, PeerError::Corrupt { hash: h } if h == hash),
        "{err}"
    );
}

#[tokio::test]
async fn changed_source_files_are_not_served() {
    let fx = Fixture::start(4, unlimited()).await;
    let mut changed = std::fs::read(&fx.file_path).expect("read");
    changed[150_000] ^= 1;
    std::fs::write(&fx.file_path, &changed).expect("write");
    let err = fx
        .ca
        .client(CLIENT)
        .get_chunk(
            fx.addr,
            SERVER,
            &fx.ticket(CLIENT),
            &fx.file.0,
            &unlimited(),
        )
        .await
        .expect_err("changed");
    assert!(
        matches!(&err, PeerError::Refused(r) if r == ERR_UNAVAILABLE),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_cap_are_busy() {
    // One upload at a time, paced to take ~0.9 s for the 1 MB chunk.
    let fx = Fixture::start(1, RateLimiter::new(Some(1_000_000))).await;
    let client = fx.ca.client(CLIENT);
    let ticket = fx.ticket(CLIENT);
    let mut slow = client.connect(fx.addr, SERVER).await.expect("connect");
    let mut fast = client.connect(fx.addr, SERVER).await.expect("connect");
    let first = tokio::spawn({
        let (ticket, hash) = (ticket.clone(), fx.mem.0);
        async move { slow.get(&ticket, &hash, &RateLimiter::unlimited()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        fast.get(&ticket, &fx.mem.0, &unlimited()).await,
        Err(PeerError::Busy)
    ));
    assert_eq!(first.await.expect("join").expect("first upload"), fx.mem.1);
    // The slot is free again.
    assert_eq!(
        fast.get(&ticket, &fx.file.0, &unlimited())
            .await
            .expect("after"),
        fx.file.1
    );
}
