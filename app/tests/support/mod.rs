//! The real sync server, in-process on 127.0.0.1 with an OS-chosen port,
//! for the store's integration tests.
#![allow(dead_code)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowkeep_sync_server::cluster::Node;
use flowkeep_sync_server::{serve, token, AppState, Db, Limits, Workspaces};

pub struct TestServer {
    pub db: Arc<Db>,
    pub url: String,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("sync.db")).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = std_listener.local_addr().unwrap().port();
        std_listener.set_nonblocking(true).unwrap();
        let state = AppState {
            ready: Arc::new(AtomicBool::new(true)),
            ..AppState::new(
                db.clone(),
                Workspaces::new(
                    db.clone(),
                    Node::new(
                        &format!("ws://127.0.0.1:{port}"),
                        std::time::Duration::from_secs(15),
                    ),
                ),
                Limits::default(),
            )
        };
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
        TestServer {
            db,
            url: format!("ws://127.0.0.1:{port}/sync"),
            _dir: dir,
            _rt: rt,
        }
    }

    /// Where the server keeps its data.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A new workspace named `name`; its token.
    pub fn workspace(&self, name: &str) -> String {
        let token = token::generate();
        self.db
            .create_workspace(name, &token::hash(&token), 0)
            .unwrap();
        token
    }

    /// A credential for a raw client of workspace `name` (the token only
    /// enrols), as `flowkeep-sync-server device add` makes one.
    pub fn device(&self, name: &str, device_id: &str) -> String {
        let w = self.db.workspace_by_name(name).unwrap().unwrap();
        let credential = token::generate_device();
        self.db
            .enrol(
                &w.id,
                device_id,
                device_id,
                &token::hash(&credential),
                None,
                0,
            )
            .unwrap();
        credential
    }
}
