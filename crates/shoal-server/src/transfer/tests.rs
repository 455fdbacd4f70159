// Pins the server side of a file step end to end over the real TLS gateway, with scripted
// agents speaking the real protocol: peer identity after Welcome, Scan -> Manifest, plan
// naming with [source_ip], Fetch dispatch, WhoHas answered from the source at its peer
// address with a valid ticket, Have/FileProgress/Finished closing the rows, Release at the
// end; and that a step whose sources yield nothing ends as source not found (203).
use crate::app::App;
use crate::auth::{Caller, hash_secret};
use futures::{SinkExt as _, StreamExt as _};
use shoal_proto::{AgentMsg, End, Outcome, ServerMsg};
use shoal_store::{FileStatus, FileTaskFilter, NewHost, Page, Store};
use shoal_types::files::{ChunkRef, DirMode, DuplicateMode, FileManifest, FileSource, FileSpec};
use shoal_types::{HostFacts, HostId, HostTaskStatus, LaunchMode, RunStatus, TaskKey};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

type Conn = Framed<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, LengthDelimitedCodec>;

struct Server {
    app: App,
    addr: std::net::SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        shoal_store_sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store"),
    );
    let opts = crate::Options {
        data_dir: dir.path().to_path_buf(),
        ..crate::Options::default()
    };
    let (app, rx) = crate::build_app(
        opts,
        store,
        "test-server".into(),
        crate::metrics_handle().expect("metrics"),
    );
    tokio::spawn(
        crate::writer::Writer::new(app.clone(), rx).run(tokio_util::sync::CancellationToken::new()),
    );
    let tls = crate::tls::server_config(app.files.ca(), &[]).expect("tls");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        crate::gateway::Gateway::new(app.clone(), listener, tls)
            .run(tokio_util::sync::CancellationToken::new()),
    );
    Server {
        ca_pem: app.files.ca().cert_pem(),
        app,
        addr,
        _dir: dir,
    }
}

/// Enrolls a host directly in the store and connects a scripted agent for it.
async fn agent(s: &Server, name: &str, ip: &str, peer_port: Option<u16>) -> (HostId, Conn) {
    let secret = format!("secret-{name}");
    let host = s
        .app
        .store
        .create_host(NewHost {
            scope_id: 1,
            agent_id: format!("agent-{name}"),
            secret_hash: hash_secret(&secret),
            facts: facts(name, ip),
            agent_labels: Default::default(),
            now: 1,
        })
        .await
        .expect("host");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut s.ca_pem.as_bytes()) {
        roots.add(c.expect("cert")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    let name_ = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name_, tcp)
        .await
        .expect("tls");
    let mut conn = Framed::new(tls, LengthDelimitedCodec::new());
    send(
        &mut conn,
        &AgentMsg::Hello {
            protocol: shoal_proto::PROTOCOL_VERSION,
            agent_id: format!("agent-{name}"),
            secret,
            facts: facts(name, ip),
            labels: Default::default(),
            known_tasks: vec![],
            peer_port,
        },
    )
    .await;
    assert!(matches!(recv(&mut conn).await, ServerMsg::Welcome { .. }));
    (host.id, conn)
}

fn facts(name: &str, ip: &str) -> HostFacts {
    HostFacts {
        hostname: name.into(),
        ips: vec![ip.into()],
        os: "linux".into(),
        os_version: String::new(),
        arch: "x86_64".into(),
        agent_version: String::new(),
        containment: None,
    }
}

async fn send(conn: &mut Conn, msg: &AgentMsg) {
    let bytes = shoal_proto::encode(msg).expect("encode");
    conn.send(bytes::Bytes::from(bytes)).await.expect("send");
}

/// The next message that is not a heartbeat answer.
async fn recv(conn: &mut Conn) -> ServerMsg {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), conn.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        let msg: ServerMsg = shoal_proto::decode(&frame).expect("decode");
        if !matches!(msg, ServerMsg::Heartbeat | ServerMsg::Ack { .. }) {
            return msg;
        }
    }
}

fn spec(source: HostId, target_dir: &str) -> FileSpec {
    FileSpec {
        sources: vec![FileSource::Host {
            host_ids: vec![source],
            paths: vec!["/src/f".into()],
            account: String::new(),
        }],
        target_dir: target_dir.into(),
        account: String::new(),
        dir_mode: DirMode::Force,
        duplicate: DuplicateMode::Overwrite,
        upload_limit_mbps: None,
        download_limit_mbps: None,
        timeout_secs: 60,
        peer_to_peer: true,
    }
}

async fn start(s: &Server, spec: FileSpec, targets: Vec<HostId>) -> i64 {
    let caller = Caller::test_admin("test");
    let request = crate::launch::Request {
        caller,
        origin: LaunchMode::Api,
        scope_id: 1,
        name: "push".into(),
        job_type: shoal_types::JobType::File,
        steps: vec![crate::launch::StepRequest {
            name: "push".into(),
            spec: shoal_types::StepSpec::File(spec),
            targets: shoal_types::api::Targets {
                host_ids: targets,
                ..Default::default()
            },
        }],
    };
    crate::launch::launch(&s.app, request)
        .await
        .expect("start")
        .step_ids[0]
}

async fn step_status(s: &Server, step_id: i64) -> RunStatus {
    for _ in 0..100 {
        let step = s
            .app
            .store
            .get_step(step_id)
            .await
            .expect("step")
            .expect("step");
        if !matches!(step.status, RunStatus::Running | RunStatus::Stopping) {
            return step.status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("step did not end");
}

#[tokio::test]
async fn one_source_one_target_over_the_gateway() {
    // Pins the whole conversation of a file step with one source and one target.
    let s = server().await;
    let (src, mut src_conn) = agent(&s, "src", "10.9.0.1", Some(7001)).await;
    let (dst, mut dst_conn) = agent(&s, "dst", "10.9.0.2", Some(7002)).await;
    for conn in [&mut src_conn, &mut dst_conn] {
        match recv(conn).await {
            ServerMsg::PeerIdentity {
                cert_pem,
                key_pem,
                ticket_key,
            } => {
                assert!(cert_pem.contains("BEGIN CERTIFICATE"));
                assert!(key_pem.contains("PRIVATE KEY"));
                assert_eq!(ticket_key, s.app.files.ticket_public_hex());
            }
            other => panic!("expected the peer identity, got {other:?}"),
        }
    }
    let step_id = start(&s, spec(src, "/t/[source_ip]"), vec![dst]).await;
    let scan_key = match recv(&mut src_conn).await {
        ServerMsg::Scan { key, paths, .. } => {
            assert_eq!(paths, vec!["/src/f".to_string()]);
            key
        }
        other => panic!("expected a scan, got {other:?}"),
    };
    assert_eq!(scan_key.host_id, src);
    let chunks = vec![
        ChunkRef {
            hash: [1; 32],
            size: 4,
        },
        ChunkRef {
            hash: [2; 32],
            size: 4,
        },
    ];
    send(
        &mut src_conn,
        &AgentMsg::Manifest {
            key: scan_key,
            files: vec![FileManifest {
                path: "/src/f".into(),
                rel: "f".into(),
                size: 8,
                mode: 0o640,
                chunks: chunks.clone(),
            }],
            errors: vec![],
        },
    )
    .await;
    let key = match recv(&mut dst_conn).await {
        ServerMsg::Fetch { key, spec } => {
            assert_eq!(spec.files.len(), 1);
            assert_eq!(spec.files[0].dest, "/t/10.9.0.1/f");
            assert_eq!(spec.files[0].chunks, chunks);
            key
        }
        other => panic!("expected a fetch, got {other:?}"),
    };
    assert_eq!(key.host_id, dst);
    let now = crate::clock::now_ms();
    send(&mut dst_conn, &AgentMsg::Started { key, at: now }).await;
    send(
        &mut dst_conn,
        &AgentMsg::WhoHas {
            key,
            want: 4,
            failed: vec![],
            lost: vec![],
        },
    )
    .await;
    match recv(&mut dst_conn).await {
        ServerMsg::Peers { ticket, assign, .. } => {
            // Two source slots: both chunks from the source, at its peer address.
            assert_eq!(assign.len(), 2);
            for a in &assign {
                assert_eq!(a.holders[0].host_id, src);
                assert_eq!(
                    a.holders[0].addr,
                    Some("127.0.0.1:7001".parse().expect("addr"))
                );
            }
            let pk = hex::decode(s.app.files.ticket_public_hex()).expect("hex");
            ticket.verify(&pk, dst, now).expect("valid ticket");
        }
        other => panic!("expected peers, got {other:?}"),
    }
    send(
        &mut dst_conn,
        &AgentMsg::Have {
            key,
            chunks: vec![[1; 32], [2; 32]],
        },
    )
    .await;
    send(
        &mut dst_conn,
        &AgentMsg::FileProgress {
            key,
            files: vec![shoal_proto::FileProgressEntry {
                index: 0,
                bytes: 8,
                speed: 8,
                done: true,
                error: None,
                from: Vec::new(),
            }],
        },
    )
    .await;
    send(
        &mut src_conn,
        &AgentMsg::Served {
            key: scan_key,
            files: vec![("/src/f".into(), 8)],
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outcome = Outcome {
        end: End::Exited { code: 0 },
        started_at: Some(now),
        ended_at: now + 1,
        output_len: 0,
        truncated: false,
        digest: String::new(),
        tag: None,
    };
    send(&mut dst_conn, &AgentMsg::Finished { key, outcome }).await;
    assert_eq!(step_status(&s, step_id).await, RunStatus::Success);
    for conn in [&mut src_conn, &mut dst_conn] {
        match recv(conn).await {
            ServerMsg::Release {
                step_id: r,
                attempt,
            } => assert_eq!((r, attempt), (step_id, 0)),
            other => panic!("expected release, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rows = s
        .app
        .store
        .list_file_tasks(
            &FileTaskFilter {
                step_id,
                attempt: 0,
                mode: None,
                host_id: None,
                statuses: vec![],
            },
            Page {
                start: 0,
                length: 100,
            },
        )
        .await
        .expect("rows");
    let got: Vec<(u8, HostId, &str, FileStatus, u64)> = rows
        .data
        .iter()
        .map(|r| {
            (
                r.key.mode,
                r.key.host_id,
                r.key.dest_path.as_str(),
                r.status,
                r.bytes_done,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, src, "", FileStatus::Success, 8),
            (1, dst, "/t/10.9.0.1/f", FileStatus::Success, 8)
        ]
    );
    // A message speaking for another host ends the session.
    let foreign = TaskKey {
        host_id: src,
        ..key
    };
    send(
        &mut dst_conn,
        &AgentMsg::Have {
            key: foreign,
            chunks: vec![],
        },
    )
    .await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match dst_conn.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the session was not dropped");
}

#[tokio::test]
async fn nothing_to_send_ends_as_source_not_found_and_old_agents_are_refused() {
    // Pins: a source whose paths all fail ends every target as 203 with the first error; a
    // target without a peer port ends at once as agent abnormal, saying it is too old.
    let s = server().await;
    let (src, mut src_conn) = agent(&s, "src", "10.9.0.1", Some(7001)).await;
    let (dst, mut dst_conn) = agent(&s, "dst", "10.9.0.2", Some(7002)).await;
    let (old, _old_conn) = agent(&s, "old", "10.9.0.3", None).await;
    let _ = recv(&mut src_conn).await; // identity
    let _ = recv(&mut dst_conn).await;
    let step_id = start(&s, spec(src, "/t"), vec![dst, old]).await;
    let key = match recv(&mut src_conn).await {
        ServerMsg::Scan { key, .. } => key,
        other => panic!("expected a scan, got {other:?}"),
    };
    send(
        &mut src_conn,
        &AgentMsg::Manifest {
            key,
            files: vec![],
            errors: vec![shoal_proto::SourceError {
                path: "/src/f".into(),
                code: shoal_types::files::FileErrorCode::SourceMissing,
                message: "/src/f: no such file".into(),
            }],
        },
    )
    .await;
    assert_eq!(step_status(&s, step_id).await, RunStatus::Fail);
    let tasks = s
        .app
        .store
        .list_tasks(
            &shoal_store::TaskFilter {
                step_id,
                attempt: 0,
                statuses: vec![],
                ip: None,
                keyword: None,
                group: None,
                host_id: None,
            },
            Page {
                start: 0,
                length: 10,
            },
        )
        .await
        .expect("tasks");
    let by_host: std::collections::HashMap<HostId, (HostTaskStatus, Option<String>)> = tasks
        .data
        .iter()
        .map(|t| (t.host_id, (t.status, t.error.clone())))
        .collect();
    assert_eq!(
        by_host[&dst],
        (
            HostTaskStatus::SourceNotFound,
            Some("/src/f: no such file".into())
        )
    );
    assert_eq!(by_host[&old].0, HostTaskStatus::AgentAbnormal);
    assert!(
        by_host[&old]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("too old"))
    );
    assert!(matches!(
        recv(&mut src_conn).await,
        ServerMsg::Release { .. }
    ));
}
