//! A stand-in for the server's agent endpoint: a real TLS listener (certificates from rcgen)
//! speaking the real framing, driven message by message by the test or answering on its own.

#![allow(dead_code)]

use futures::{SinkExt as _, StreamExt as _};
use shoal_proto::{AgentMsg, ServerMsg};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_path: PathBuf,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "shoal test ca");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");

    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write ca");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    Pki {
        dir,
        ca_path,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(shoal_proto::MAX_FRAME_BYTES)
        .new_codec()
}

/// One accepted agent connection.
pub struct Peer {
    reader: FramedRead<ReadHalf<TlsStream<TcpStream>>, LengthDelimitedCodec>,
    writer: FramedWrite<WriteHalf<TlsStream<TcpStream>>, LengthDelimitedCodec>,
    /// Answer the agent's heartbeats while waiting in `recv`.
    pub answer_heartbeats: bool,
}

impl Peer {
    fn new(stream: TlsStream<TcpStream>) -> Peer {
        let (r, w) = tokio::io::split(stream);
        Peer {
            reader: FramedRead::new(r, codec()),
            writer: FramedWrite::new(w, codec()),
            answer_heartbeats: true,
        }
    }

    /// The next non-heartbeat message; `None` when the agent closed the connection.
    pub async fn recv(&mut self) -> Option<AgentMsg> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.reader.next())
                .await
                .expect("agent silent for 20 s")?
                .ok()?;
            let msg: AgentMsg = shoal_proto::decode(&frame).expect("agent sent garbage");
            if matches!(msg, AgentMsg::Heartbeat { .. }) {
                if self.answer_heartbeats {
                    self.send(&ServerMsg::Heartbeat).await;
                }
                continue;
            }
            return Some(msg);
        }
    }

    pub async fn send(&mut self, msg: &ServerMsg) {
        let bytes = shoal_proto::encode(msg).expect("encode");
        let _ = self.writer.send(Bytes::from(bytes)).await;
    }
}

/// Listens on 127.0.0.1; every accepted TLS connection comes out of the receiver.
pub async fn listen(acceptor: tokio_rustls::TlsAcceptor) -> (SocketAddr, mpsc::Receiver<Peer>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    let _ = tx.send(Peer::new(stream)).await;
                }
            });
        }
    });
    (addr, rx)
}

/// Waits for the next connection (at most `secs`).
pub async fn next_peer(peers: &mut mpsc::Receiver<Peer>, secs: u64) -> Peer {
    tokio::time::timeout(Duration::from_secs(secs), peers.recv())
        .await
        .expect("no connection in time")
        .expect("listener gone")
}

/// What the answering server saw.
#[derive(Default)]
pub struct AutoStats {
    pub enrolls: std::sync::atomic::AtomicUsize,
    pub hellos: std::sync::atomic::AtomicUsize,
    /// host id -> exit code of its one task.
    pub results: std::sync::Mutex<std::collections::HashMap<i64, i32>>,
    agents: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// A server that answers on its own: enrolls (token `tok`), welcomes (heartbeat 5 s), runs one
/// task per host (`exit 1` on odd hosts), acknowledges results and heartbeats.
pub async fn auto_server(
    acceptor: tokio_rustls::TlsAcceptor,
    bind: &str,
) -> (SocketAddr, Arc<AutoStats>) {
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind(bind).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(AutoStats::default());
    let st = stats.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, stats) = (acceptor.clone(), st.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut peer = Peer::new(stream);
                peer.answer_heartbeats = true;
                while let Some(msg) = peer.recv().await {
                    match msg {
                        AgentMsg::Enroll { token, .. } => {
                            if token != "tok" {
                                let code = shoal_proto::RejectCode::BadToken;
                                peer.send(&ServerMsg::Rejected {
                                    code,
                                    message: "bad token".into(),
                                })
                                .await;
                                return;
                            }
                            let n = stats.enrolls.fetch_add(1, Ordering::SeqCst) as i64 + 1;
                            let agent_id = format!("ag-{n}");
                            stats
                                .agents
                                .lock()
                                .expect("lock")
                                .insert(agent_id.clone(), n);
                            peer.send(&ServerMsg::Enrolled {
                                host_id: n,
                                agent_id,
                                secret: "s".into(),
                            })
                            .await;
                        }
                        AgentMsg::Hello { agent_id, .. } => {
                            let host_id =
                                stats.agents.lock().expect("lock").get(&agent_id).copied();
                            let Some(host_id) = host_id else {
                                let code = shoal_proto::RejectCode::UnknownAgent;
                                peer.send(&ServerMsg::Rejected {
                                    code,
                                    message: "who?".into(),
                                })
                                .await;
                                return;
                            };
                            stats.hellos.fetch_add(1, Ordering::SeqCst);
                            peer.send(&ServerMsg::Welcome {
                                host_id,
                                generation: 1,
                                heartbeat_secs: 5,
                            })
                            .await;
                            if !stats.results.lock().expect("lock").contains_key(&host_id) {
                                let content = if host_id % 2 == 1 {
                                    "exit 1"
                                } else {
                                    "echo ok"
                                };
                                let spec = shoal_types::ScriptSpec {
                                    language: shoal_types::Language::Shell,
                                    content: content.into(),
                                    args: vec![],
                                    env: vec![],
                                    account: String::new(),
                                    login_env: false,
                                    workdir: String::new(),
                                    timeout_secs: 60,
                                };
                                let key = shoal_types::TaskKey {
                                    step_id: 1,
                                    attempt: 0,
                                    host_id,
                                };
                                peer.send(&ServerMsg::Run {
                                    key,
                                    spec: spec.into(),
                                    output_cap: 1024,
                                })
                                .await;
                            }
                        }
                        AgentMsg::Finished { key, outcome } => {
                            if let shoal_proto::End::Exited { code } = outcome.end {
                                stats
                                    .results
                                    .lock()
                                    .expect("lock")
                                    .insert(key.host_id, code);
                            }
                            let output_offset = outcome.output_len;
                            peer.send(&ServerMsg::Ack {
                                key,
                                output_offset,
                                finished: true,
                            })
                            .await;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, stats)
}
